// timm's MaxxViT family (maxxvit.py): CoAtNet (MBConv stages, then full-map attention with a relative
// position bias) and MaxViT / MaxxViT (per block: MBConv or ConvNeXt, then window and grid partition
// attention). Window, grid and bias sizes follow the configuration's pretraining resolution, so inputs
// must keep the shapes that resolution implies (as in timm).
#include <smp/timm.h>

#include <cmath>

#include "timm/families.h"
#include "timm/layers/attention_modules.h"
#include "timm/layers/create_conv2d.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"
#include "timm/layers/layer_norm_act.h"
#include "timm/layers/layer_scale.h"
#include "timm/layers/mlp.h"
#include "timm/layers/norm_act.h"
#include "timm/layers/pool2d_same.h"
#include "timm/layers/pos_embed_rel.h"

namespace smp::timm {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

namespace maxxvit {
namespace {

struct ConvCfg {
  std::string block_type = "mbconv";
  double expand_ratio = 4.0;
  bool expand_output = true;
  int64_t kernel_size = 3;
  bool pre_norm_act = false;
  bool output_bias = true;
  std::string stride_mode = "dw";
  std::string pool_type = "avg2";
  std::string downsample_pool_type = "avg2";
  std::string padding;
  bool attn_early = false;
  std::string attn_act = "silu";
  double attn_ratio = 0.25;
  double init_values = 1e-6;  // ConvNeXt blocks only; 0 = no layer scale
  std::string act = "gelu";
  std::string norm;       // "" = batchnorm2d for MBConv, layernorm2d for ConvNeXt
  double norm_eps = -1;   // < 0 = 1e-5 for MBConv, 1e-6 for ConvNeXt
  std::string norm_name() const { return !norm.empty() ? norm : block_type == "mbconv" ? "batchnorm2d" : "layernorm2d"; }
  double eps() const { return norm_eps >= 0 ? norm_eps : block_type == "mbconv" ? 1e-5 : 1e-6; }
};

struct TransformerCfg {
  int64_t dim_head = 32;
  bool head_first = true;
  double expand_ratio = 4.0;
  bool expand_first = true;
  bool shortcut_bias = true;
  bool attn_bias = true;
  std::string pool_type = "avg2";
  std::string rel_pos_type = "bias";
  int64_t rel_pos_dim = 512;
  int64_t partition_ratio = 32;
  bool no_block_attn = false;
  double init_values = 0;  // 0 = no layer scale
  std::string act = "gelu";
  std::string norm = "layernorm2d";
  std::string norm_cl = "layernorm";
  double norm_eps = 1e-6;
};

struct MaxxVitCfg {
  std::vector<int64_t> embed_dim, depths;
  std::vector<std::vector<std::string>> block_types;  // per stage, extended with its last entry
  std::pair<int64_t, int64_t> stem_width{32, 64};
  bool stem_bias = false;
  ConvCfg conv;
  TransformerCfg tf;
  int64_t head_hidden_size = 0;
  int64_t img_size = 224;
};

nn::AnyModule make_norm(const std::string& type, int64_t c, double eps) {
  if (type == "layernorm2d") return nn::AnyModule(layers::LayerNorm2d(c, eps));
  if (type == "batchnorm2d") return nn::AnyModule(nn::BatchNorm2d(nn::BatchNorm2dOptions(c).eps(eps)));
  if (type == "layernorm") return nn::AnyModule(nn::LayerNorm(nn::LayerNormOptions({c}).eps(eps)));
  throw std::invalid_argument("maxxvit: unsupported norm " + type);
}

nn::AnyModule make_norm_act(const std::string& type, int64_t c, const std::string& act, double eps) {
  if (type == "batchnorm2d") return nn::AnyModule(layers::BatchNormAct2d(c, act, eps));
  if (type == "layernorm2d") return nn::AnyModule(layers::LayerNormAct2d(c, act, eps));
  throw std::invalid_argument("maxxvit: unsupported norm " + type);
}

template <typename Parent>
nn::AnyModule add(Parent* parent, const std::string& name, nn::AnyModule m) {
  parent->register_module(name, m.ptr());
  return m;
}

// Spatial /2 pooling, then a 1x1 conv when the width changes.
class Downsample2dImpl : public nn::Module {
 public:
  Downsample2dImpl(int64_t dim, int64_t dim_out, const std::string& pool_type, const std::string& padding = "",
                   bool bias = true)
      : type_(pool_type) {
    if (!padding.empty() && !(padding == "same" && pool_type == "avg2"))
      throw std::invalid_argument("maxxvit: unsupported pool padding " + padding + " for " + pool_type);
    if (padding == "same") same_ = register_module("pool", layers::AvgPool2dSame(2, 2));
    if (dim != dim_out) expand = register_module("expand", nn::Conv2d(nn::Conv2dOptions(dim, dim_out, 1).bias(bias)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor y;
    if (same_) y = same_(x);
    else if (type_ == "max") y = F::max_pool2d(x, F::MaxPool2dFuncOptions(3).stride(2).padding(1));
    else if (type_ == "max2") y = F::max_pool2d(x, F::MaxPool2dFuncOptions(2).stride(2));
    else if (type_ == "avg") y = F::avg_pool2d(x, F::AvgPool2dFuncOptions(3).stride(2).padding(1).count_include_pad(false));
    else y = F::avg_pool2d(x, F::AvgPool2dFuncOptions(2).stride(2));
    return expand ? expand(y) : y;
  }
  nn::Conv2d expand{nullptr};

 private:
  std::string type_;
  layers::AvgPool2dSame same_{nullptr};
};
TORCH_MODULE(Downsample2d);

// Registers "rel_pos" on `parent` per the configuration and returns its bias getter (empty for none).
std::function<torch::Tensor()> make_rel_pos(nn::Module* parent, const TransformerCfg& c, int64_t wh, int64_t ww,
                                            int64_t heads) {
  if (c.rel_pos_type == "mlp") {
    auto m = parent->register_module("rel_pos", layers::RelPosMlp(wh, ww, heads, c.rel_pos_dim));
    return [m] { return m->get_bias(); };
  }
  if (c.rel_pos_type == "bias") {
    auto m = parent->register_module("rel_pos", layers::RelPosBias(wh, ww, heads));
    return [m] { return m->get_bias(); };
  }
  if (c.rel_pos_type == "bias_tf") {
    auto m = parent->register_module("rel_pos", layers::RelPosBiasTf(wh, ww, heads));
    return [m] { return m->get_bias(); };
  }
  return {};
}

// Multi-head attention over NCHW maps (1x1 conv projections), all positions of the map attending.
class Attention2dImpl : public nn::Module {
 public:
  Attention2dImpl(int64_t dim, int64_t dim_out, const TransformerCfg& c, int64_t wh, int64_t ww)
      : hd_(c.dim_head), head_first_(c.head_first) {
    const int64_t dim_attn = c.expand_first ? dim_out : dim;
    heads_ = dim_attn / hd_;
    qkv = register_module("qkv", nn::Conv2d(nn::Conv2dOptions(dim, dim_attn * 3, 1).bias(c.attn_bias)));
    bias_ = make_rel_pos(this, c, wh, ww, heads_);
    proj = register_module("proj", nn::Conv2d(nn::Conv2dOptions(dim_attn, dim_out, 1).bias(c.attn_bias)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const auto b = x.size(0), h = x.size(2), w = x.size(3);
    torch::Tensor q, k, v;
    if (head_first_) {
      auto t = qkv(x).view({b, heads_, hd_ * 3, -1}).chunk(3, 2);
      q = t[0], k = t[1], v = t[2];
    } else {
      auto t = qkv(x).reshape({b, 3, heads_, hd_, -1});
      q = t.select(1, 0), k = t.select(1, 1), v = t.select(1, 2);
    }
    auto attn = torch::matmul((q * std::pow(static_cast<double>(hd_), -0.5)).transpose(-2, -1), k);
    if (bias_) attn = attn + bias_();
    attn = attn.softmax(-1);
    return proj(torch::matmul(v, attn.transpose(-2, -1)).reshape({b, -1, h, w}));
  }
  nn::Conv2d qkv{nullptr}, proj{nullptr};

 private:
  int64_t hd_, heads_;
  bool head_first_;
  std::function<torch::Tensor()> bias_;
};
TORCH_MODULE(Attention2d);

// Multi-head attention over channels-last tokens [B, ..., C].
class AttentionClImpl : public nn::Module {
 public:
  AttentionClImpl(int64_t dim, int64_t dim_out, const TransformerCfg& c, int64_t wh, int64_t ww)
      : hd_(c.dim_head), head_first_(c.head_first) {
    const int64_t dim_attn = c.expand_first && dim_out > dim ? dim_out : dim;
    heads_ = dim_attn / hd_;
    qkv = register_module("qkv", nn::Linear(nn::LinearOptions(dim, dim_attn * 3).bias(c.attn_bias)));
    bias_ = make_rel_pos(this, c, wh, ww, heads_);
    proj = register_module("proj", nn::Linear(nn::LinearOptions(dim_attn, dim_out).bias(c.attn_bias)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const auto b = x.size(0);
    auto shape = x.sizes().vec();
    shape.back() = -1;
    torch::Tensor q, k, v;
    if (head_first_) {
      auto t = qkv(x).view({b, -1, heads_, hd_ * 3}).transpose(1, 2).chunk(3, 3);
      q = t[0], k = t[1], v = t[2];
    } else {
      auto t = qkv(x).reshape({b, -1, 3, heads_, hd_}).transpose(1, 3);
      q = t.select(2, 0), k = t.select(2, 1), v = t.select(2, 2);
    }
    auto attn = torch::matmul(q * std::pow(static_cast<double>(hd_), -0.5), k.transpose(-2, -1));
    if (bias_) attn = attn + bias_();
    auto y = torch::matmul(attn.softmax(-1), v).transpose(1, 2).reshape(shape);
    return proj(y);
  }
  nn::Linear qkv{nullptr}, proj{nullptr};

 private:
  int64_t hd_, heads_;
  bool head_first_;
  std::function<torch::Tensor()> bias_;
};
TORCH_MODULE(AttentionCl);

// Norm, then pooling: the first transformer block's pre-attention path.
class NormDownImpl : public nn::Module {
 public:
  NormDownImpl(nn::AnyModule norm, Downsample2d down) : norm_(std::move(norm)) {
    register_module("norm", norm_.ptr());
    down_ = register_module("down", down);
  }
  torch::Tensor forward(const torch::Tensor& x) { return down_(norm_.forward(x)); }

 private:
  nn::AnyModule norm_;
  Downsample2d down_{nullptr};
};
TORCH_MODULE(NormDown);

// CoAtNet transformer block on NCHW maps; with stride 2 both branches pool first.
class TransformerBlock2dImpl : public nn::Module {
 public:
  TransformerBlock2dImpl(int64_t dim, int64_t dim_out, int64_t stride, const TransformerCfg& c, int64_t feat,
                         double dpr)
      : dpr_(dpr) {
    if (stride == 2) {
      shortcut_ = register_module("shortcut", Downsample2d(dim, dim_out, c.pool_type, "", c.shortcut_bias));
      norm1_ = nn::AnyModule(register_module("norm1", NormDown(make_norm(c.norm, dim, c.norm_eps),
                                                                Downsample2d(dim, dim, c.pool_type))));
    } else {
      norm1_ = add(this, "norm1", make_norm(c.norm, dim, c.norm_eps));
    }
    attn = register_module("attn", Attention2d(dim, dim_out, c, feat, feat));
    if (c.init_values > 0) ls1 = register_module("ls1", layers::LayerScale2d(dim_out, c.init_values));
    norm2_ = add(this, "norm2", make_norm(c.norm, dim_out, c.norm_eps));
    mlp = register_module("mlp", layers::Mlp(layers::MlpOptions(dim_out, static_cast<int64_t>(dim_out * c.expand_ratio))
                                                 .act(c.act).use_conv(true)));
    if (c.init_values > 0) ls2 = register_module("ls2", layers::LayerScale2d(dim_out, c.init_values));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto a = attn(norm1_.forward(x));
    if (ls1) a = ls1(a);
    auto y = (shortcut_ ? shortcut_(x) : x) + layers::drop_path(a, dpr_, is_training());
    auto m = mlp(norm2_.forward(y));
    if (ls2) m = ls2(m);
    return y + layers::drop_path(m, dpr_, is_training());
  }
  Attention2d attn{nullptr};
  layers::Mlp mlp{nullptr};
  layers::LayerScale2d ls1{nullptr}, ls2{nullptr};

 private:
  double dpr_;
  Downsample2d shortcut_{nullptr};
  nn::AnyModule norm1_, norm2_;
};
TORCH_MODULE(TransformerBlock2d);

// Pre-norm inverted bottleneck: 1x1 expand, kxk depthwise with squeeze-excite, 1x1 project.
class MbConvBlockImpl : public nn::Module {
 public:
  MbConvBlockImpl(int64_t in, int64_t out, int64_t stride, const ConvCfg& c, double dpr) : dpr_(dpr) {
    const auto norm = c.norm_name();
    const auto eps = c.eps();
    const int64_t mid = layers::make_divisible((c.expand_output ? out : in) * c.expand_ratio);
    if (stride == 2) shortcut_ = register_module("shortcut", Downsample2d(in, out, c.pool_type, c.padding, c.output_bias));
    int64_t stride_pool = 1, stride_1 = 1, stride_2 = 1;
    if (c.stride_mode == "pool") stride_pool = stride;
    else if (c.stride_mode == "1x1") stride_1 = stride;
    else stride_2 = stride;
    pre_norm_ = add(this, "pre_norm", make_norm_act(norm, in, c.pre_norm_act ? c.act : "", eps));
    if (stride_pool > 1) down_ = register_module("down", Downsample2d(in, in, c.downsample_pool_type, c.padding));
    conv1_ = add(this, "conv1_1x1", layers::create_conv2d_pad(in, mid, 1, layers::ConvArgs().stride(stride_1)));
    norm1_ = add(this, "norm1", make_norm_act(norm, mid, c.act, eps));
    conv2_ = add(this, "conv2_kxk", layers::create_conv2d_pad(mid, mid, c.kernel_size,
                                                              layers::ConvArgs().stride(stride_2).groups(mid).padding(c.padding)));
    const auto rd = static_cast<int64_t>(c.attn_ratio * (c.expand_output ? out : mid));
    if (c.attn_early) se_early_ = register_module("se_early", layers::SEModule(mid, rd, c.attn_act));
    norm2_ = add(this, "norm2", make_norm_act(norm, mid, c.act, eps));
    if (!c.attn_early) se_ = register_module("se", layers::SEModule(mid, rd, c.attn_act));
    conv3_ = add(this, "conv3_1x1", layers::create_conv2d_pad(mid, out, 1, layers::ConvArgs().bias(c.output_bias)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto shortcut = shortcut_ ? shortcut_(x) : x;
    auto y = pre_norm_.forward(x);
    if (down_) y = down_(y);
    y = norm1_.forward(conv1_.forward(y));
    y = conv2_.forward(y);
    if (se_early_) y = se_early_(y);
    y = norm2_.forward(y);
    if (se_) y = se_(y);
    y = conv3_.forward(y);
    return layers::drop_path(y, dpr_, is_training()) + shortcut;
  }

 private:
  double dpr_;
  Downsample2d shortcut_{nullptr}, down_{nullptr};
  nn::AnyModule pre_norm_, conv1_, norm1_, conv2_, norm2_, conv3_;
  layers::SEModule se_early_{nullptr}, se_{nullptr};
};
TORCH_MODULE(MbConvBlock);

// ConvNeXt block with a conv MLP (NCHW throughout).
class ConvNeXtBlockImpl : public nn::Module {
 public:
  ConvNeXtBlockImpl(int64_t in, int64_t out, int64_t stride, const ConvCfg& c, double dpr) : dpr_(dpr) {
    if (stride == 2) shortcut_ = nn::AnyModule(register_module("shortcut", Downsample2d(in, out, "avg2")));
    else if (in != out)
      shortcut_ = nn::AnyModule(
          register_module("shortcut", nn::Conv2d(nn::Conv2dOptions(in, out, 1).bias(c.output_bias))));
    if (c.stride_mode != "pool" && c.stride_mode != "dw") throw std::invalid_argument("maxxvit: bad stride_mode");
    const int64_t stride_pool = c.stride_mode == "pool" ? stride : 1, stride_dw = c.stride_mode == "dw" ? stride : 1;
    if (stride_pool == 2) down_ = register_module("down", Downsample2d(in, in, c.downsample_pool_type));
    conv_dw_ = add(this, "conv_dw", layers::create_conv2d_pad(in, out, 7,
                                                             layers::ConvArgs().stride(stride_dw).depthwise(true).bias(c.output_bias)));
    norm_ = add(this, "norm", make_norm(c.norm_name(), out, c.eps()));
    mlp = register_module("mlp", layers::Mlp(layers::MlpOptions(out, static_cast<int64_t>(c.expand_ratio * out))
                                                 .bias(c.output_bias).act(c.act).use_conv(true)));
    if (c.init_values > 0) ls = register_module("ls", layers::LayerScale2d(out, c.init_values));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto shortcut = shortcut_.is_empty() ? x : shortcut_.forward(x);
    auto y = down_ ? down_(x) : x;
    y = mlp(norm_.forward(conv_dw_.forward(y)));
    if (ls) y = ls(y);
    return layers::drop_path(y, dpr_, is_training()) + shortcut;
  }
  layers::Mlp mlp{nullptr};
  layers::LayerScale2d ls{nullptr};

 private:
  double dpr_;
  nn::AnyModule shortcut_, conv_dw_, norm_;
  Downsample2d down_{nullptr};
};
TORCH_MODULE(ConvNeXtBlock);

// NHWC <-> [windows, p, p, C]: blocks of adjacent pixels ("block") or pixels strided by H / p ("grid").
torch::Tensor partition(const torch::Tensor& x, int64_t p, bool block) {
  const auto b = x.size(0), h = x.size(1), w = x.size(2), c = x.size(3);
  if (h % p != 0 || w % p != 0)
    throw std::invalid_argument("maxxvit: feature size " + std::to_string(h) + "x" + std::to_string(w) +
                                " is not divisible by the partition size " + std::to_string(p));
  if (block) return x.view({b, h / p, p, w / p, p, c}).permute({0, 1, 3, 2, 4, 5}).reshape({-1, p, p, c});
  return x.view({b, p, h / p, p, w / p, c}).permute({0, 2, 4, 1, 3, 5}).reshape({-1, p, p, c});
}

torch::Tensor unpartition(const torch::Tensor& win, int64_t p, bool block, int64_t h, int64_t w) {
  const auto c = win.size(-1);
  auto y = win.view({-1, h / p, w / p, p, p, c});
  y = block ? y.permute({0, 1, 3, 2, 4, 5}) : y.permute({0, 3, 1, 4, 2, 5});
  return y.reshape({-1, h, w, c});
}

// Window ("block") or grid partition attention + MLP on NHWC maps.
class PartitionAttentionClImpl : public nn::Module {
 public:
  PartitionAttentionClImpl(int64_t dim, bool block, const TransformerCfg& c, int64_t p, double dpr)
      : block_(block), p_(p), dpr_(dpr) {
    norm1_ = add(this, "norm1", make_norm(c.norm_cl, dim, c.norm_eps));
    attn = register_module("attn", AttentionCl(dim, dim, c, p, p));
    if (c.init_values > 0) ls1 = register_module("ls1", layers::LayerScale(dim, c.init_values));
    norm2_ = add(this, "norm2", make_norm(c.norm_cl, dim, c.norm_eps));
    mlp = register_module("mlp", layers::Mlp(layers::MlpOptions(dim, static_cast<int64_t>(dim * c.expand_ratio)).act(c.act)));
    if (c.init_values > 0) ls2 = register_module("ls2", layers::LayerScale(dim, c.init_values));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const auto h = x.size(1), w = x.size(2);
    auto a = unpartition(attn(partition(norm1_.forward(x), p_, block_)), p_, block_, h, w);
    if (ls1) a = ls1(a);
    auto y = x + layers::drop_path(a, dpr_, is_training());
    auto m = mlp(norm2_.forward(y));
    if (ls2) m = ls2(m);
    return y + layers::drop_path(m, dpr_, is_training());
  }
  AttentionCl attn{nullptr};
  layers::Mlp mlp{nullptr};
  layers::LayerScale ls1{nullptr}, ls2{nullptr};

 private:
  bool block_;
  int64_t p_;
  double dpr_;
  nn::AnyModule norm1_, norm2_;
};
TORCH_MODULE(PartitionAttentionCl);

// Window and grid attention side by side (half the width each), one MLP.
class ParallelPartitionAttentionImpl : public nn::Module {
 public:
  ParallelPartitionAttentionImpl(int64_t dim, const TransformerCfg& c, int64_t p, double dpr) : p_(p), dpr_(dpr) {
    norm1_ = add(this, "norm1", make_norm(c.norm_cl, dim, c.norm_eps));
    attn_block = register_module("attn_block", AttentionCl(dim, dim / 2, c, p, p));
    attn_grid = register_module("attn_grid", AttentionCl(dim, dim / 2, c, p, p));
    if (c.init_values > 0) ls1 = register_module("ls1", layers::LayerScale(dim, c.init_values));
    norm2_ = add(this, "norm2", make_norm(c.norm_cl, dim, c.norm_eps));
    mlp = register_module("mlp", layers::Mlp(layers::MlpOptions(dim, static_cast<int64_t>(dim * c.expand_ratio)).act(c.act)));
    if (c.init_values > 0) ls2 = register_module("ls2", layers::LayerScale(dim, c.init_values));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const auto h = x.size(1), w = x.size(2);
    auto n = norm1_.forward(x);
    auto a = torch::cat({unpartition(attn_block(partition(n, p_, true)), p_, true, h, w),
                         unpartition(attn_grid(partition(n, p_, false)), p_, false, h, w)},
                        -1);
    if (ls1) a = ls1(a);
    auto y = x + layers::drop_path(a, dpr_, is_training());
    auto m = mlp(norm2_.forward(y));
    if (ls2) m = ls2(m);
    return y + layers::drop_path(m, dpr_, is_training());
  }
  AttentionCl attn_block{nullptr}, attn_grid{nullptr};
  layers::Mlp mlp{nullptr};
  layers::LayerScale ls1{nullptr}, ls2{nullptr};

 private:
  int64_t p_;
  double dpr_;
  nn::AnyModule norm1_, norm2_;
};
TORCH_MODULE(ParallelPartitionAttention);

nn::AnyModule conv_block(int64_t in, int64_t out, int64_t stride, const ConvCfg& c, double dpr) {
  if (c.block_type == "convnext") return nn::AnyModule(ConvNeXtBlock(in, out, stride, c, dpr));
  return nn::AnyModule(MbConvBlock(in, out, stride, c, dpr));
}

// MaxViT block: conv block, then window and grid attention (NHWC inside).
class MaxxVitBlockImpl : public nn::Module {
 public:
  MaxxVitBlockImpl(int64_t dim, int64_t dim_out, int64_t stride, const MaxxVitCfg& cfg, int64_t p, double dpr) {
    conv_ = add(this, "conv", conv_block(dim, dim_out, stride, cfg.conv, dpr));
    if (!cfg.tf.no_block_attn) attn_block = register_module("attn_block", PartitionAttentionCl(dim_out, true, cfg.tf, p, dpr));
    attn_grid = register_module("attn_grid", PartitionAttentionCl(dim_out, false, cfg.tf, p, dpr));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = conv_.forward(x).permute({0, 2, 3, 1});
    if (attn_block) y = attn_block(y);
    return attn_grid(y).permute({0, 3, 1, 2});
  }
  PartitionAttentionCl attn_block{nullptr}, attn_grid{nullptr};

 private:
  nn::AnyModule conv_;
};
TORCH_MODULE(MaxxVitBlock);

class ParallelMaxxVitBlockImpl : public nn::Module {
 public:
  ParallelMaxxVitBlockImpl(int64_t dim, int64_t dim_out, int64_t stride, const MaxxVitCfg& cfg, int64_t p, double dpr) {
    conv = register_module("conv", nn::Sequential());
    conv->push_back(conv_block(dim, dim_out, stride, cfg.conv, dpr));
    conv->push_back(conv_block(dim_out, dim_out, 1, cfg.conv, dpr));
    attn = register_module("attn", ParallelPartitionAttention(dim_out, cfg.tf, p, dpr));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return attn(conv->forward(x).permute({0, 2, 3, 1})).permute({0, 3, 1, 2});
  }
  nn::Sequential conv{nullptr};
  ParallelPartitionAttention attn{nullptr};
};
TORCH_MODULE(ParallelMaxxVitBlock);

class MaxxVitImpl : public BackboneImpl {
 public:
  MaxxVitImpl(const std::string& name, const MaxxVitCfg& c, const ModelArgs& args) : BackboneImpl(name, args) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " supports output_stride 32 only (got " +
                                  std::to_string(args.output_stride()) + ")");
    const auto n = static_cast<int64_t>(c.depths.size());
    const int64_t last = layers::last_feature_index(args, n + 1, name);
    const int64_t partition = c.img_size / c.tf.partition_ratio;
    // Stem: conv /2, norm-act, conv.
    auto stem = register_module("stem", std::make_shared<nn::Module>());
    const auto cargs = layers::ConvArgs().padding(c.conv.padding).bias(c.stem_bias);
    stem_conv1_ = add(stem.get(), "conv1", layers::create_conv2d_pad(args.in_chans(), c.stem_width.first, 3,
                                                                     layers::ConvArgs(cargs).stride(2)));
    stem_norm1_ = add(stem.get(), "norm1", make_norm_act(c.conv.norm_name(), c.stem_width.first, c.conv.act, c.conv.eps()));
    stem_conv2_ = add(stem.get(), "conv2", layers::create_conv2d_pad(c.stem_width.first, c.stem_width.second, 3, cargs));
    feature_info_.push_back({"stem", c.stem_width.second, 2});
    const auto dpr = layers::drop_path_rates(args.drop_path_rate(), c.depths);
    stages_ = register_module("stages", nn::Sequential());
    int64_t in = c.stem_width.second, feat = c.img_size / 2, stride = 2;
    for (int64_t i = 0; i < n; ++i) {
      const auto u = static_cast<size_t>(i);
      const int64_t out = c.embed_dim[u];
      feat = (feat - 1) / 2 + 1;
      stride *= 2;
      feature_info_.push_back({"stages." + std::to_string(i), out, stride});
      if (i + 1 > last) continue;
      auto stage = StageHolder();
      auto blocks = stage->blocks;
      int64_t dim = in;
      for (int64_t j = 0; j < c.depths[u]; ++j) {
        const auto& types = c.block_types[u];
        const auto& t = types[std::min<size_t>(static_cast<size_t>(j), types.size() - 1)];
        const int64_t s = j == 0 ? 2 : 1;
        const double r = dpr[u][static_cast<size_t>(j)];
        if (t == "C") blocks->push_back(conv_block(dim, out, s, c.conv, r));
        else if (t == "T") blocks->push_back(TransformerBlock2d(dim, out, s, c.tf, feat, r));
        else if (t == "M") blocks->push_back(MaxxVitBlock(dim, out, s, c, partition, r));
        else blocks->push_back(ParallelMaxxVitBlock(dim, out, s, c, partition, r));
        dim = out;
      }
      stages_->push_back(stage);
      in = out;
    }
    if (args.features_only()) return;
    const int64_t nf = c.embed_dim.back();
    auto head = register_module("head", std::make_shared<nn::Module>());
    if (c.head_hidden_size > 0) {
      head_norm_ = add(head.get(), "norm", make_norm(c.tf.norm, nf, c.tf.norm_eps));
      auto pre = head->register_module("pre_logits", std::make_shared<nn::Module>());
      pre_fc_ = pre->register_module("fc", nn::Linear(nf, c.head_hidden_size));
    } else {
      norm_ = add(this, "norm", make_norm(c.tf.norm, nf, c.tf.norm_eps));
    }
    if (args.num_classes() > 0)
      fc_ = head->register_module("fc", nn::Linear(c.head_hidden_size > 0 ? c.head_hidden_size : nf, args.num_classes()));
  }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    layers::check_feature_indices(indices, static_cast<int64_t>(stages_->size()) + 1, model_name());
    std::vector<torch::Tensor> out;
    auto y = stem(x);
    if (indices[0] == 0) out.push_back(y);
    for (int64_t i = 1; out.size() < indices.size(); ++i) {
      y = stages_[static_cast<size_t>(i - 1)]->as<StageHolderImpl>()->forward(y);
      if (i == indices[out.size()]) out.push_back(y);
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    auto y = stages_->forward(stem(x));
    if (pre_fc_) {
      auto pooled = head_norm_.forward(y.mean({2, 3}, true)).flatten(1);
      return classify(torch::tanh(pre_fc_(pooled)), fc_);
    }
    return pool_and_classify(norm_.forward(y), fc_);
  }

  std::vector<std::string> flattened_children() const override { return {"stages"}; }
  std::string first_conv() const override { return "stem.conv1"; }

 private:
  class StageHolderImpl : public nn::Module {
   public:
    StageHolderImpl() { blocks = register_module("blocks", nn::Sequential()); }
    torch::Tensor forward(const torch::Tensor& x) { return blocks->forward(x); }
    nn::Sequential blocks{nullptr};
  };
  TORCH_MODULE(StageHolder);

  torch::Tensor stem(const torch::Tensor& x) {
    return stem_conv2_.forward(stem_norm1_.forward(stem_conv1_.forward(x)));
  }

  nn::AnyModule stem_conv1_, stem_norm1_, stem_conv2_, norm_, head_norm_;
  nn::Sequential stages_{nullptr};
  nn::Linear pre_fc_{nullptr}, fc_{nullptr};
};

// Configuration builders mirroring timm's helper functions for each model group.
struct RwCoat {
  std::string stride_mode = "pool", pool_type = "avg2";
  bool conv_output_bias = false, conv_attn_early = false;
  std::string conv_attn_act = "relu";
  bool shortcut_bias = true;
  std::string tf_norm = "layernorm2d";
  double init_values = 0;
  std::string rel_pos_type = "bias";
  int64_t rel_pos_dim = 512;
  void apply(MaxxVitCfg& m) const {
    m.conv.stride_mode = stride_mode, m.conv.pool_type = pool_type, m.conv.pre_norm_act = true;
    m.conv.expand_output = false, m.conv.output_bias = conv_output_bias, m.conv.attn_early = conv_attn_early;
    m.conv.attn_act = conv_attn_act, m.conv.act = "silu";
    m.tf.expand_first = false, m.tf.shortcut_bias = shortcut_bias, m.tf.pool_type = pool_type;
    m.tf.init_values = init_values, m.tf.norm = tf_norm, m.tf.rel_pos_type = rel_pos_type, m.tf.rel_pos_dim = rel_pos_dim;
  }
};

struct RwMax {
  std::string stride_mode = "dw";
  bool conv_output_bias = false;
  double conv_attn_ratio = 1.0 / 16;
  double init_values = 0;
  std::string rel_pos_type = "bias";
  int64_t rel_pos_dim = 512;
  void apply(MaxxVitCfg& m) const {
    m.conv.stride_mode = stride_mode, m.conv.expand_output = false, m.conv.output_bias = conv_output_bias;
    m.conv.attn_ratio = conv_attn_ratio, m.conv.act = "silu";
    m.tf.expand_first = false, m.tf.init_values = init_values, m.tf.rel_pos_type = rel_pos_type;
    m.tf.rel_pos_dim = rel_pos_dim;
  }
};

struct Next {
  bool no_block_attn = false;
  double conv_init = 1e-6, tf_init = 1e-6;
  std::string rel_pos_type = "mlp";
  void apply(MaxxVitCfg& m) const {
    m.conv.block_type = "convnext", m.conv.expand_output = false, m.conv.init_values = conv_init;
    m.conv.norm = "layernorm2d";
    m.tf.expand_first = false, m.tf.no_block_attn = no_block_attn, m.tf.init_values = tf_init;
    m.tf.rel_pos_type = rel_pos_type;
  }
};

void apply_tf(MaxxVitCfg& m) {
  m.conv.norm_eps = 1e-3, m.conv.act = "gelu_tanh", m.conv.padding = "same";
  m.tf.norm_eps = 1e-5, m.tf.act = "gelu_tanh", m.tf.head_first = false, m.tf.rel_pos_type = "bias_tf";
}

MaxxVitCfg base(std::vector<int64_t> dims, std::vector<int64_t> depths, std::pair<int64_t, int64_t> stem,
                const std::string& block = "C", int64_t head_hidden = 0) {
  MaxxVitCfg m;
  m.embed_dim = std::move(dims), m.depths = std::move(depths), m.stem_width = stem, m.head_hidden_size = head_hidden;
  if (block == "C") m.block_types = {{"C"}, {"C"}, {"T"}, {"T"}};
  else m.block_types = {{block}, {block}, {block}, {block}};
  return m;
}

template <typename T>
MaxxVitCfg with(MaxxVitCfg m, const T& t) {
  t.apply(m);
  return m;
}

MaxxVitCfg tf_model(std::vector<int64_t> dims, std::vector<int64_t> depths, int64_t stem) {
  auto m = base(std::move(dims), std::move(depths), {stem, stem}, "M", 0);
  m.head_hidden_size = m.embed_dim.back();
  m.stem_bias = true;
  apply_tf(m);
  return m;
}

}  // namespace

void register_family() {
  const std::vector<int64_t> d64{64, 128, 256, 512}, d96{96, 192, 384, 768}, d128{128, 256, 512, 1024},
      d192{192, 384, 768, 1536}, d32{32, 64, 128, 256};
  std::map<std::string, MaxxVitCfg> cfgs;
  {
    RwMax pico;
    pico.conv_output_bias = true, pico.conv_attn_ratio = 0.25;
    cfgs["coatnet_pico_rw"] = with(base(d64, {2, 3, 5, 2}, {32, 64}), pico);
    RwMax nano = pico;
    nano.stride_mode = "pool";
    cfgs["coatnet_nano_rw"] = with(base(d64, {3, 4, 6, 3}, {32, 64}), nano);
    RwCoat c0;
    c0.conv_attn_early = true, c0.shortcut_bias = false;
    cfgs["coatnet_0_rw"] = with(base(d96, {2, 3, 7, 2}, {32, 64}), c0);
    RwCoat c1 = c0;
    c1.stride_mode = "dw";
    cfgs["coatnet_1_rw"] = with(base(d96, {2, 6, 14, 2}, {32, 64}), c1);
    RwCoat c2;
    c2.stride_mode = "dw", c2.conv_attn_act = "silu";
    cfgs["coatnet_2_rw"] = with(base(d128, {2, 6, 14, 2}, {64, 128}), c2);
    RwCoat c3 = c2;
    c3.init_values = 1e-6;
    cfgs["coatnet_3_rw"] = with(base(d192, {2, 6, 14, 2}, {96, 192}), c3);
    RwCoat bn0 = c1;
    bn0.tf_norm = "batchnorm2d";
    cfgs["coatnet_bn_0_rw"] = with(base(d96, {2, 3, 7, 2}, {32, 64}), bn0);
    RwMax rnano = pico;
    rnano.rel_pos_type = "mlp", rnano.rel_pos_dim = 384;
    cfgs["coatnet_rmlp_nano_rw"] = with(base(d64, {3, 4, 6, 3}, {32, 64}), rnano);
    RwCoat r0;
    r0.stride_mode = "dw", r0.rel_pos_type = "mlp";
    cfgs["coatnet_rmlp_0_rw"] = with(base(d96, {2, 3, 7, 2}, {32, 64}), r0);
    RwCoat r1;
    r1.pool_type = "max", r1.conv_attn_early = true, r1.shortcut_bias = false, r1.rel_pos_type = "mlp";
    r1.rel_pos_dim = 384;
    cfgs["coatnet_rmlp_1_rw"] = with(base(d96, {2, 6, 14, 2}, {32, 64}), r1);
    cfgs["coatnet_rmlp_1_rw2"] = with(base(d96, {2, 6, 14, 2}, {32, 64}), r0);
    RwCoat r2 = c3;
    r2.rel_pos_type = "mlp";
    cfgs["coatnet_rmlp_2_rw"] = with(base(d128, {2, 6, 14, 2}, {64, 128}), r2);
    cfgs["coatnet_rmlp_3_rw"] = with(base(d192, {2, 6, 14, 2}, {96, 192}), r2);
    auto cc = with(base(d64, {3, 4, 6, 3}, {32, 64}), RwCoat());
    cc.block_types = {{"C"}, {"C"}, {"C", "T"}, {"C", "T"}};
    cfgs["coatnet_nano_cc"] = cc;
    Next nx;
    nx.rel_pos_type = "bias", nx.conv_init = 1e-5, nx.tf_init = 0;
    cfgs["coatnext_nano_rw"] = with(base(d64, {3, 4, 6, 3}, {32, 64}), nx);
    cfgs["coatnet_0"] = base(d96, {2, 3, 5, 2}, {64, 64}, "C", 768);
    cfgs["coatnet_1"] = base(d96, {2, 6, 14, 2}, {64, 64}, "C", 768);
    cfgs["coatnet_2"] = base(d128, {2, 6, 14, 2}, {128, 128}, "C", 1024);
    cfgs["coatnet_3"] = base(d192, {2, 6, 14, 2}, {192, 192}, "C", 1536);
    cfgs["coatnet_4"] = base(d192, {2, 12, 28, 2}, {192, 192}, "C", 1536);
    cfgs["coatnet_5"] = base({256, 512, 1280, 2048}, {2, 12, 28, 2}, {192, 192}, "C", 2048);
    cfgs["maxvit_pico_rw"] = with(base(d32, {2, 2, 5, 2}, {24, 32}, "M"), RwMax());
    cfgs["maxvit_nano_rw"] = with(base(d64, {1, 2, 3, 1}, {32, 64}, "M"), RwMax());
    cfgs["maxvit_tiny_rw"] = with(base(d64, {2, 2, 5, 2}, {32, 64}, "M"), RwMax());
    cfgs["maxvit_tiny_pm"] = with(base(d64, {2, 2, 5, 2}, {32, 64}, "PM"), RwMax());
    RwMax rm;
    rm.rel_pos_type = "mlp";
    cfgs["maxvit_rmlp_pico_rw"] = with(base(d32, {2, 2, 5, 2}, {24, 32}, "M"), rm);
    cfgs["maxvit_rmlp_nano_rw"] = with(base(d64, {1, 2, 3, 1}, {32, 64}, "M"), rm);
    cfgs["maxvit_rmlp_tiny_rw"] = with(base(d64, {2, 2, 5, 2}, {32, 64}, "M"), rm);
    RwMax rms = rm;
    rms.init_values = 1e-6;
    cfgs["maxvit_rmlp_small_rw"] = with(base(d96, {2, 2, 5, 2}, {32, 64}, "M"), rms);
    cfgs["maxvit_rmlp_base_rw"] = with(base(d96, {2, 6, 14, 2}, {32, 64}, "M", 768), rm);
    cfgs["maxxvit_rmlp_nano_rw"] = with(base(d64, {1, 2, 3, 1}, {32, 64}, "M"), Next());
    cfgs["maxxvit_rmlp_tiny_rw"] = with(base(d64, {2, 2, 5, 2}, {32, 64}, "M"), Next());
    cfgs["maxxvit_rmlp_small_rw"] = with(base(d96, {2, 2, 5, 2}, {48, 96}, "M"), Next());
    Next v2;
    v2.no_block_attn = true, v2.rel_pos_type = "bias";
    cfgs["maxxvitv2_nano_rw"] = with(base(d96, {1, 2, 3, 1}, {48, 96}, "M"), v2);
    Next v2m;
    v2m.no_block_attn = true;
    cfgs["maxxvitv2_rmlp_base_rw"] = with(base(d128, {2, 6, 12, 2}, {64, 128}, "M"), v2m);
    cfgs["maxxvitv2_rmlp_large_rw"] = with(base({160, 320, 640, 1280}, {2, 6, 16, 2}, {80, 160}, "M", 1280), v2m);
    cfgs["maxvit_tiny_tf"] = tf_model(d64, {2, 2, 5, 2}, 64);
    cfgs["maxvit_small_tf"] = tf_model(d96, {2, 2, 5, 2}, 64);
    cfgs["maxvit_base_tf"] = tf_model(d96, {2, 6, 14, 2}, 64);
    cfgs["maxvit_large_tf"] = tf_model(d128, {2, 6, 14, 2}, 128);
    cfgs["maxvit_xlarge_tf"] = tf_model(d192, {2, 6, 14, 2}, 192);
  }
  // (registered name, configuration, pretraining size); the name's last part is the size.
  const std::vector<std::string> names = {
      "coatnet_0_224", "coatnet_0_rw_224", "coatnet_1_224", "coatnet_1_rw_224", "coatnet_2_224", "coatnet_2_rw_224",
      "coatnet_3_224", "coatnet_3_rw_224", "coatnet_4_224", "coatnet_5_224", "coatnet_bn_0_rw_224",
      "coatnet_nano_cc_224", "coatnet_nano_rw_224", "coatnet_pico_rw_224", "coatnet_rmlp_0_rw_224",
      "coatnet_rmlp_1_rw2_224", "coatnet_rmlp_1_rw_224", "coatnet_rmlp_2_rw_224", "coatnet_rmlp_2_rw_384",
      "coatnet_rmlp_3_rw_224", "coatnet_rmlp_nano_rw_224", "coatnext_nano_rw_224", "maxvit_base_tf_224",
      "maxvit_base_tf_384", "maxvit_base_tf_512", "maxvit_large_tf_224", "maxvit_large_tf_384", "maxvit_large_tf_512",
      "maxvit_nano_rw_256", "maxvit_pico_rw_256", "maxvit_rmlp_base_rw_224", "maxvit_rmlp_base_rw_384",
      "maxvit_rmlp_nano_rw_256", "maxvit_rmlp_pico_rw_256", "maxvit_rmlp_small_rw_224", "maxvit_rmlp_small_rw_256",
      "maxvit_rmlp_tiny_rw_256", "maxvit_small_tf_224", "maxvit_small_tf_384", "maxvit_small_tf_512",
      "maxvit_tiny_pm_256", "maxvit_tiny_rw_224", "maxvit_tiny_rw_256", "maxvit_tiny_tf_224", "maxvit_tiny_tf_384",
      "maxvit_tiny_tf_512", "maxvit_xlarge_tf_224", "maxvit_xlarge_tf_384", "maxvit_xlarge_tf_512",
      "maxxvit_rmlp_nano_rw_256", "maxxvit_rmlp_small_rw_256", "maxxvit_rmlp_tiny_rw_256", "maxxvitv2_nano_rw_256",
      "maxxvitv2_rmlp_base_rw_224", "maxxvitv2_rmlp_base_rw_384", "maxxvitv2_rmlp_large_rw_224"};
  std::vector<std::pair<std::string, MaxxVitCfg>> models;
  for (const auto& name : names) {
    const auto cut = name.rfind('_');
    auto cfg = cfgs.at(name.substr(0, cut));
    cfg.img_size = std::stoll(name.substr(cut + 1));
    models.emplace_back(name, cfg);
  }
  register_configs<MaxxVitImpl>("maxxvit", models, [](ModelEntry& e, const MaxxVitCfg& c) {
    // timm's default tags: ImageNet mean/std for coatnet_bn_0_rw and the 224 TF weights, 0.5 otherwise.
    const bool imagenet = e.name == "coatnet_bn_0_rw_224" ||
                          (e.name.find("_tf_224") != std::string::npos && e.name != "maxvit_xlarge_tf_224");
    if (!imagenet) e.mean = e.std = {0.5, 0.5, 0.5};
    if (e.name == "coatnet_3_rw_224") e.num_classes = 11821;
    if (e.name == "maxvit_xlarge_tf_224") e.num_classes = 21843;
  });
}

}  // namespace maxxvit
}  // namespace smp::timm
