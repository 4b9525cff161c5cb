// timm's "bring your own blocks" network (byobnet.py): GerNet, RepVGG, MobileOne, the ResNet-Q / *ts
// ResNets with optional channel attention, RegNetZ (BatchNorm and EvoNorm), the CLIP ResNets and the
// test model, all one ByobNet built from a ModelCfg (byobnet.h; byoanet.cpp reuses it).
#include "timm/models/byobnet.h"

#include <smp/modules.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "timm/families.h"
#include "timm/layers/activations.h"
#include "timm/layers/attention_modules.h"
#include "timm/layers/conv2d_same.h"
#include "timm/layers/conv_norm_act.h"
#include "timm/layers/create_aa.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"
#include "timm/layers/mlp.h"
#include "timm/layers/mobileone.h"
#include "timm/layers/norm_act.h"
#include "timm/layers/pool2d_same.h"
#include "timm/layers/pos_embed.h"

namespace smp::timm {

namespace nn = torch::nn;

namespace byobnet {
namespace {

using TensorFn = std::function<torch::Tensor(const torch::Tensor&)>;

// EvoNorm2dS0a: unlike S0, the group std division also applies without the activation part.
class EvoNorm2dS0aImpl : public nn::Module {
 public:
  EvoNorm2dS0aImpl(int64_t channels, int64_t group_size, bool apply_act) : groups_(channels / group_size) {
    if (channels % group_size != 0) throw std::invalid_argument("EvoNorm2dS0a: group size does not divide channels");
    weight = register_parameter("weight", torch::ones({channels}));
    bias = register_parameter("bias", torch::zeros({channels}));
    if (apply_act) v = register_parameter("v", torch::ones({channels}));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
    const auto grouped = x.reshape({b, groups_, c / groups_, h, w});
    auto sd = grouped.to(torch::kFloat32).var({2, 3, 4}, /*unbiased=*/false, /*keepdim=*/true).add(1e-3).sqrt();
    sd = sd.to(x.scalar_type()).expand(grouped.sizes()).reshape({b, c, h, w});
    const std::vector<int64_t> shape = {1, -1, 1, 1};
    auto y = v.defined() ? x * (x * v.view(shape)).sigmoid() : x;
    return torch::addcmul(bias.view(shape), y / sd, weight.view(shape));
  }
  torch::Tensor weight, bias, v;

 private:
  int64_t groups_;
};
TORCH_MODULE(EvoNorm2dS0a);

// The model-wide layer choices (timm's LayerFn), with the block's attention overrides applied.
struct LayerFns {
  std::string act = "relu";
  int64_t evo_group_size = 0;
  std::string aa;
  AttnCfg attn;
  SelfAttnCfg self_attn;
};

nn::AnyModule norm_act(int64_t channels, bool apply_act, const LayerFns& l) {
  if (l.evo_group_size > 0) return nn::AnyModule(EvoNorm2dS0a(channels, l.evo_group_size, apply_act));
  return nn::AnyModule(layers::BatchNormAct2d(channels, apply_act ? l.act : ""));
}

// timm's ConvNormAct with byobnet's norm choices and optional anti-aliasing ("aa", parameter-free):
// a strided conv with aa runs at stride 1 and the pool downsamples after the norm.
class ConvNormActImpl : public nn::Module {
 public:
  ConvNormActImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t dilation, int64_t groups,
                  bool apply_act, const LayerFns& l) {
    const bool use_aa = !l.aa.empty() && stride > 1;
    const int64_t conv_stride = use_aa ? 1 : stride;
    conv = register_module("conv", nn::Conv2d(nn::Conv2dOptions(in, out, kernel)
                                                  .stride(conv_stride)
                                                  .padding(layers::get_padding(kernel, conv_stride, dilation))
                                                  .dilation(dilation)
                                                  .groups(groups)
                                                  .bias(false)));
    bn_ = norm_act(out, apply_act, l);
    register_module("bn", bn_.ptr());
    if (use_aa) aa_ = layers::create_aa(l.aa, out, stride);
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = bn_.forward(conv(x));
    return aa_ ? aa_(y) : y;
  }
  nn::Conv2d conv{nullptr};

 private:
  nn::AnyModule bn_;
  TensorFn aa_;
};
TORCH_MODULE(ConvNormAct);

ConvNormAct cna(int64_t in, int64_t out, int64_t kernel, const LayerFns& l, int64_t stride = 1, int64_t dilation = 1,
                int64_t groups = 1, bool apply_act = true) {
  return ConvNormAct(in, out, kernel, stride, dilation, groups, apply_act, l);
}

// GlobalContext as create_attn("gca") builds it: attention-pooled context through an MLP (fc1,
// LayerNorm2d, ReLU, fc2) added to every position ("mlp_add"), no gate.
class GlobalContextAddImpl : public nn::Module {
 public:
  explicit GlobalContextAddImpl(int64_t channels) {
    const int64_t hidden = layers::make_divisible(static_cast<double>(channels) / 8.0, 1, 0.0, 0.0);
    conv_attn = register_module("conv_attn", nn::Conv2d(nn::Conv2dOptions(channels, 1, 1).bias(true)));
    auto mlp = register_module("mlp_add", std::make_shared<nn::Module>());
    fc1 = mlp->register_module("fc1", nn::Conv2d(nn::Conv2dOptions(channels, hidden, 1).bias(true)));
    norm = mlp->register_module("norm", layers::LayerNorm2d(hidden));
    fc2 = mlp->register_module("fc2", nn::Conv2d(nn::Conv2dOptions(hidden, channels, 1).bias(true)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const int64_t b = x.size(0), c = x.size(1), hw = x.size(2) * x.size(3);
    auto attn = torch::softmax(conv_attn(x).reshape({b, 1, hw}), -1).unsqueeze(3);
    auto context = torch::matmul(x.reshape({b, c, hw}).unsqueeze(1), attn).view({b, c, 1, 1});
    return x + fc2(torch::relu(norm(fc1(context))));
  }

 private:
  nn::Conv2d conv_attn{nullptr}, fc1{nullptr}, fc2{nullptr};
  layers::LayerNorm2d norm{nullptr};
};
TORCH_MODULE(GlobalContextAdd);

// BAT's bilinear attention transform: per group, row and column mixing matrices over block_size
// positions (from max-pooled features), expanded block-diagonally over the map.
class BilinearAttnTransformImpl : public nn::Module {
 public:
  BilinearAttnTransformImpl(int64_t channels, int64_t block_size, int64_t groups)
      : block_size_(block_size), groups_(groups) {
    conv1 = register_module("conv1", layers::ConvNormAct(layers::ConvNormActOptions(channels, groups, 1)));
    conv_p = register_module(
        "conv_p", nn::Conv2d(nn::Conv2dOptions(groups, block_size * block_size * groups, {block_size, 1})));
    conv_q = register_module(
        "conv_q", nn::Conv2d(nn::Conv2dOptions(groups, block_size * block_size * groups, {1, block_size})));
    conv2 = register_module("conv2", layers::ConvNormAct(layers::ConvNormActOptions(channels, channels, 1)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3), bs = block_size_;
    if (h % bs != 0 || w % bs != 0)
      throw std::invalid_argument("BAT attention needs feature maps divisible by its block size " + std::to_string(bs));
    auto out = conv1(x);
    auto p = conv_p(std::get<0>(torch::adaptive_max_pool2d(out, {bs, 1}))).view({b, groups_, bs, bs}).sigmoid();
    auto q = conv_q(std::get<0>(torch::adaptive_max_pool2d(out, {1, bs}))).view({b, groups_, bs, bs}).sigmoid();
    p = p / p.sum(3, true);
    q = q / q.sum(2, true);
    p = p.view({b, groups_, 1, bs, bs}).expand({b, groups_, c / groups_, bs, bs}).reshape({b, c, bs, bs});
    q = q.view({b, groups_, 1, bs, bs}).expand({b, groups_, c / groups_, bs, bs}).reshape({b, c, bs, bs});
    return conv2(torch::matmul(torch::matmul(resize(p, h / bs), x), resize(q, w / bs)));
  }

 private:
  // Each entry of the bs x bs matrix becomes a t x t diagonal block: kron(m, I_t).
  static torch::Tensor resize(const torch::Tensor& m, int64_t t) {
    if (t <= 1) return m;
    const int64_t b = m.size(0), c = m.size(1), bs = m.size(2);
    auto eye = torch::eye(t, m.options());
    return (m.view({b, c, bs, 1, bs, 1}) * eye.view({1, 1, 1, t, 1, t})).reshape({b, c, bs * t, bs * t});
  }
  int64_t block_size_, groups_;
  layers::ConvNormAct conv1{nullptr}, conv2{nullptr};
  nn::Conv2d conv_p{nullptr}, conv_q{nullptr};
};
TORCH_MODULE(BilinearAttnTransform);

// timm's BatNonLocalAttn: reduce (conv1), bilinear transform (ba), expand (conv2), residual add.
class BatNonLocalAttnImpl : public nn::Module {
 public:
  BatNonLocalAttnImpl(int64_t channels, int64_t block_size) {
    const int64_t rd = layers::make_divisible(static_cast<double>(channels) * 0.25, 8);
    conv1 = register_module("conv1", layers::ConvNormAct(layers::ConvNormActOptions(channels, rd, 1)));
    ba = register_module("ba", BilinearAttnTransform(rd, block_size, 2));
    conv2 = register_module("conv2", layers::ConvNormAct(layers::ConvNormActOptions(rd, channels, 1)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    // timm's channel-wise Dropout2d(0.2) before the sum (training only).
    auto y = conv2(ba(conv1(x)));
    if (is_training()) y = torch::nn::functional::dropout2d(y, torch::nn::functional::Dropout2dFuncOptions().p(0.2).training(true));
    return y + x;
  }

 private:
  layers::ConvNormAct conv1{nullptr}, conv2{nullptr};
  BilinearAttnTransform ba{nullptr};
};
TORCH_MODULE(BatNonLocalAttn);

nn::AnyModule create_attn(const AttnCfg& a, int64_t channels) {
  if (a.layer.empty()) return {};
  if (a.layer == "se")
    return nn::AnyModule(layers::SEModule(channels, a.rd_ratio > 0 ? a.rd_ratio : 1.0 / 16,
                                          a.rd_divisor > 0 ? a.rd_divisor : 8));
  if (a.layer == "eca") return nn::AnyModule(layers::EcaModule(channels));
  if (a.layer == "gca") return nn::AnyModule(GlobalContextAdd(channels));
  if (a.layer == "bat") return nn::AnyModule(BatNonLocalAttn(channels, a.block_size > 0 ? a.block_size : 7));
  throw std::invalid_argument("byobnet: unsupported attention layer '" + a.layer + "'");
}

// timm's DownsampleAvg shortcut: 2x2 average pool (ceil mode, padding not counted; 'same' padded at
// stride 1 in a dilated stage), then a 1x1 ConvNormAct without activation ("conv").
class DownsampleAvgImpl : public nn::Module {
 public:
  DownsampleAvgImpl(int64_t in, int64_t out, int64_t stride, int64_t dilation, const LayerFns& l) {
    const int64_t avg_stride = dilation == 1 ? stride : 1;
    if (stride > 1 || dilation > 1) {
      if (avg_stride == 1 && dilation > 1) {
        pool_ = [p = layers::AvgPool2dSame(2, 1, true, false)](const torch::Tensor& x) mutable { return p(x); };
      } else {
        pool_ = [avg_stride](const torch::Tensor& x) {
          return torch::avg_pool2d(x, {2, 2}, {avg_stride, avg_stride}, {0, 0}, true, false);
        };
      }
    }
    conv = register_module("conv", cna(in, out, 1, l, 1, 1, 1, false));
  }
  torch::Tensor forward(const torch::Tensor& x) { return conv(pool_ ? pool_(x) : x); }

 private:
  TensorFn pool_;
  ConvNormAct conv{nullptr};
};
TORCH_MODULE(DownsampleAvg);

// The arguments create_byob_stages hands each block.
struct BlockArgs {
  int64_t in, out, stride, first_dilation, dilation, group_size;
  double bottle_ratio;
  std::string downsample;
  double drop_path_rate;
  std::vector<int64_t> feat_size;
  BlockKwargs kw;
  LayerFns l;
};

int64_t num_groups(int64_t group_size, int64_t channels) { return group_size > 0 ? channels / group_size : 1; }

// basic / bottle / dark / edge / self_attn: a path of named modules, a shortcut (identity, pooled or
// strided 1x1 ConvNormAct, or none at all with downsample=''), drop path on the path, the activation
// after the sum unless linear_out.
class ResidualBlockImpl : public nn::Module {
 public:
  explicit ResidualBlockImpl(const BlockArgs& a) : drop_path_rate_(a.drop_path_rate) {
    const bool changes = a.in != a.out || a.stride != 1 || a.first_dilation != a.dilation;
    if (!changes) {
      residual_ = true;
    } else if (a.downsample == "avg") {
      residual_ = true;
      shortcut_ = nn::AnyModule(register_module("shortcut", DownsampleAvg(a.in, a.out, a.stride, a.first_dilation, a.l)));
    } else if (!a.downsample.empty()) {
      residual_ = true;
      shortcut_ =
          nn::AnyModule(register_module("shortcut", cna(a.in, a.out, 1, a.l, a.stride, a.first_dilation, 1, false)));
    }
    act_ = layers::get_act(a.kw.linear_out.value_or(false) ? "" : a.l.act);
  }
  void add(const std::string& name, nn::AnyModule m) {
    if (m.is_empty()) return;
    register_module(name, m.ptr());
    path_.push_back(std::move(m));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = x;
    for (auto& m : path_) y = m.forward(y);
    y = layers::drop_path(y, drop_path_rate_, is_training());
    if (residual_) y = y + (shortcut_.is_empty() ? x : shortcut_.forward(x));
    return act_(y);
  }

 private:
  bool residual_ = false;
  double drop_path_rate_;
  nn::AnyModule shortcut_;
  std::vector<nn::AnyModule> path_;
  layers::ActFn act_;
};
TORCH_MODULE(ResidualBlock);

nn::AnyModule any(ConvNormAct m) { return nn::AnyModule(std::move(m)); }

ResidualBlock basic_block(const BlockArgs& a) {
  const auto mid = layers::make_divisible(static_cast<double>(a.out) * a.bottle_ratio);
  const int64_t k = a.kw.kernel_size.value_or(3);
  ResidualBlock b(a);
  b->add("conv1_kxk", any(cna(a.in, mid, k, a.l, a.stride, a.first_dilation)));
  b->add("conv2_kxk", any(cna(mid, a.out, k, a.l, 1, a.dilation, num_groups(a.group_size, mid), false)));
  b->add("attn_last", create_attn(a.l.attn, a.out));
  return b;
}

ResidualBlock bottleneck_block(const BlockArgs& a) {
  const auto mid = layers::make_divisible(static_cast<double>(a.kw.bottle_in.value_or(false) ? a.in : a.out) *
                                          a.bottle_ratio);
  const int64_t k = a.kw.kernel_size.value_or(3), groups = num_groups(a.group_size, mid);
  ResidualBlock b(a);
  b->add("conv1_1x1", any(cna(a.in, mid, 1, a.l)));
  b->add("conv2_kxk", any(cna(mid, mid, k, a.l, a.stride, a.first_dilation, groups)));
  if (a.kw.extra_conv.value_or(false)) b->add("conv2b_kxk", any(cna(mid, mid, k, a.l, 1, a.dilation, groups)));
  b->add("attn", create_attn(a.l.attn, mid));
  b->add("conv3_1x1", any(cna(mid, a.out, 1, a.l, 1, 1, 1, false)));
  return b;
}

ResidualBlock dark_block(const BlockArgs& a) {
  const auto mid = layers::make_divisible(static_cast<double>(a.out) * a.bottle_ratio);
  ResidualBlock b(a);
  b->add("conv1_1x1", any(cna(a.in, mid, 1, a.l)));
  b->add("conv2_kxk", any(cna(mid, a.out, a.kw.kernel_size.value_or(3), a.l, a.stride, a.first_dilation,
                              num_groups(a.group_size, mid), false)));
  b->add("attn_last", create_attn(a.l.attn, a.out));
  return b;
}

ResidualBlock edge_block(const BlockArgs& a) {
  const auto mid = layers::make_divisible(static_cast<double>(a.out) * a.bottle_ratio);
  ResidualBlock b(a);
  b->add("conv1_kxk", any(cna(a.in, mid, a.kw.kernel_size.value_or(3), a.l, a.stride, a.first_dilation,
                              num_groups(a.group_size, mid))));
  b->add("attn", create_attn(a.l.attn, mid));
  b->add("conv2_1x1", any(cna(mid, a.out, 1, a.l, 1, 1, 1, false)));
  return b;
}

ResidualBlock self_attn_block(const BlockArgs& a) {
  const auto mid = layers::make_divisible(static_cast<double>(a.kw.bottle_in.value_or(false) ? a.in : a.out) *
                                          a.bottle_ratio);
  if (!a.l.self_attn.make) throw std::invalid_argument("byobnet: self_attn block without a self-attention layer");
  int64_t stride = a.stride;
  ResidualBlock b(a);
  b->add("conv1_1x1", any(cna(a.in, mid, 1, a.l)));
  if (a.kw.extra_conv.value_or(false)) {
    b->add("conv2_kxk", any(cna(mid, mid, a.kw.kernel_size.value_or(3), a.l, a.stride, a.first_dilation,
                                num_groups(a.group_size, mid))));
    stride = 1;  // the conv strides instead
  }
  b->add("self_attn", a.l.self_attn.make(mid, stride, a.feat_size));
  b->add("post_attn", norm_act(mid, true, a.l));
  b->add("conv3_1x1", any(cna(mid, a.out, 1, a.l, 1, 1, 1, false)));
  return b;
}

// RepVGG: kxk and 1x1 conv-BN branches plus a BatchNorm identity branch (shape kept), summed, then
// optional attention and the activation; reparameterize() folds the branches into "reparam_conv".
class RepVggBlockImpl : public nn::Module, public layers::Reparameterizable {
 public:
  RepVggBlockImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t first_dilation, int64_t dilation,
                  int64_t group_size, double drop_path_rate, const LayerFns& l)
      : stride_(stride), dilation_(first_dilation), groups_(num_groups(group_size, in)) {
    if (l.evo_group_size > 0 || !l.aa.empty())
      throw std::invalid_argument("byobnet: RepVGG blocks need BatchNorm without anti-aliasing");
    const bool ident = in == out && stride == 1 && first_dilation == dilation;
    if (ident) identity_ = register_module("identity", layers::BatchNormAct2d(out, ""));
    auto opts = [&](int64_t k) {
      return layers::ConvNormActOptions(in, out, k).stride(stride).groups(groups_).act("");
    };
    conv_kxk_ = register_module("conv_kxk", layers::ConvNormAct(opts(kernel).dilation(first_dilation)));
    conv_1x1_ = register_module("conv_1x1", layers::ConvNormAct(opts(1)));
    drop_path_rate_ = ident ? drop_path_rate : 0.0;
    attn_ = create_attn(l.attn, out);
    if (!attn_.is_empty()) register_module("attn", attn_.ptr());
    act_ = layers::get_act(l.act);
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor y;
    if (reparam_conv_) {
      y = reparam_conv_(x);
    } else {
      y = conv_1x1_(x) + conv_kxk_(x);
      if (identity_) y = layers::drop_path(y, drop_path_rate_, is_training()) + identity_(x);
    }
    if (!attn_.is_empty()) y = attn_.forward(y);
    return act_(y);
  }
  bool reparameterize() override {
    if (reparam_conv_) return false;
    torch::NoGradGuard no_grad;
    auto [kernel, bias] = layers::fuse_conv_bn(*conv_kxk_);
    const int64_t k = kernel.size(2), pad = k / 2;
    auto [k1, b1] = layers::fuse_conv_bn(*conv_1x1_);
    kernel = kernel + torch::constant_pad_nd(k1, {pad, pad, pad, pad});
    bias = bias + b1;
    if (identity_) {
      auto eye = layers::identity_kernel(kernel.size(1) * groups_, groups_, k, k, kernel.options());
      auto [ki, bi] = layers::fuse_bn(eye, *identity_);
      kernel = kernel + ki;
      bias = bias + bi;
    }
    nn::Conv2d conv(nn::Conv2dOptions(kernel.size(1) * groups_, kernel.size(0), k)
                        .stride(stride_)
                        .padding(layers::get_padding(k, stride_, dilation_))
                        .dilation(dilation_)
                        .groups(groups_)
                        .bias(true));
    conv->to(kernel.device(), kernel.scalar_type());
    conv->weight.copy_(kernel);
    conv->bias.copy_(bias);
    reparam_conv_ = register_module("reparam_conv", conv);
    for (const char* name : {"identity", "conv_kxk", "conv_1x1"})
      if (named_children().contains(name)) unregister_module(name);
    identity_ = nullptr;
    conv_kxk_ = conv_1x1_ = nullptr;
    return true;
  }

 private:
  int64_t stride_, dilation_, groups_;
  double drop_path_rate_ = 0.0;
  layers::BatchNormAct2d identity_{nullptr};
  layers::ConvNormAct conv_kxk_{nullptr}, conv_1x1_{nullptr};
  nn::AnyModule attn_;
  nn::Conv2d reparam_conv_{nullptr};
  layers::ActFn act_;
};
TORCH_MODULE(RepVggBlock);

nn::AnyModule mobileone_block(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t group_size,
                              int64_t branches, bool dilation_changes, double drop_path_rate, const LayerFns& l) {
  return nn::AnyModule(layers::MobileOneBlock(layers::MobileOneBlockOptions(in, out, kernel)
                                                  .stride(stride)
                                                  .groups(num_groups(group_size, in))
                                                  .num_conv_branches(branches)
                                                  .act(l.act)
                                                  .dilation_changes(dilation_changes)
                                                  .drop_path_rate(drop_path_rate),
                                              create_attn(l.attn, out)));
}

nn::AnyModule create_block(const std::string& type, const BlockArgs& a) {
  if (type == "basic") return nn::AnyModule(basic_block(a));
  if (type == "bottle") return nn::AnyModule(bottleneck_block(a));
  if (type == "dark") return nn::AnyModule(dark_block(a));
  if (type == "edge") return nn::AnyModule(edge_block(a));
  if (type == "self_attn") return nn::AnyModule(self_attn_block(a));
  if (type == "rep")
    return nn::AnyModule(RepVggBlock(a.in, a.out, a.kw.kernel_size.value_or(3), a.stride, a.first_dilation,
                                     a.dilation, a.group_size, a.drop_path_rate, a.l));
  if (type == "one")
    return mobileone_block(a.in, a.out, a.kw.kernel_size.value_or(3), a.stride, a.group_size,
                           a.kw.num_conv_branches.value_or(1), a.first_dilation != a.dilation, a.drop_path_rate, a.l);
  throw std::invalid_argument("byobnet: unknown block type '" + type + "'");
}

// One stage: its blocks in order ("stages.<i>.<j>").
class StageImpl : public nn::Module {
 public:
  void add(nn::AnyModule m) {
    register_module(std::to_string(blocks_.size()), m.ptr());
    blocks_.push_back(std::move(m));
  }
  torch::Tensor forward(torch::Tensor x) {
    for (auto& b : blocks_) x = b.forward(x);
    return x;
  }

 private:
  std::vector<nn::AnyModule> blocks_;
};
TORCH_MODULE(Stage);

// timm's ClassifierHead / NormMlpClassifierHead / AttentionPool2d heads ("head.*").
class HeadImpl : public nn::Module {
 public:
  HeadImpl(const std::string& type, int64_t in, int64_t num_classes, int64_t hidden, const std::string& act,
           int64_t feat_size, double drop_rate)
      : type_(type), drop_rate_(drop_rate), act_(layers::get_act(act)) {
    int64_t width = in;
    if (type == "mlp") {
      norm_ = register_module("norm", nn::BatchNorm2d(in));
      if (hidden > 0) {
        auto pre = register_module("pre_logits", std::make_shared<nn::Module>());
        pre_fc_ = pre->register_module("fc", nn::Linear(in, hidden));
        width = hidden;
      }
    } else if (type == "attn_abs") {
      // CLIP's attention pool: the mean token queries the map (64-wide heads), learned positions for
      // feat_size x feat_size (resampled for other sizes).
      heads_ = in / 64;
      feat_size_ = feat_size;
      q_ = register_module("q", nn::Linear(in, in));
      k_ = register_module("k", nn::Linear(in, in));
      v_ = register_module("v", nn::Linear(in, in));
      if (num_classes > 0) proj_ = register_module("proj", nn::Linear(in, num_classes));
      pos_embed = register_parameter("pos_embed", torch::zeros({feat_size * feat_size + 1, in}));
      return;
    }
    if (num_classes > 0) fc_ = register_module("fc", nn::Linear(width, num_classes));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    if (type_ == "attn_abs") return attn_pool(x);
    auto y = x.mean({2, 3}, true);
    if (norm_) y = norm_(y);
    y = y.flatten(1);
    if (pre_fc_) y = act_(pre_fc_(y));
    y = layers::dropout(y, drop_rate_, is_training());
    return fc_ ? fc_(y) : y;
  }
  torch::Tensor pos_embed;

 private:
  torch::Tensor attn_pool(const torch::Tensor& x) {
    const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3), n = h * w + 1, hd = c / heads_;
    auto t = x.flatten(2).transpose(1, 2);
    t = torch::cat({t.mean(1, true), t}, 1);
    auto pos = pos_embed.unsqueeze(0);
    if (h != feat_size_ || w != feat_size_)
      pos = layers::resample_abs_pos_embed(pos, h, w, feat_size_, feat_size_, 1);
    t = t + pos;
    auto split = [&](nn::Linear& lin) { return lin(t).reshape({b, n, heads_, hd}).transpose(1, 2); };
    auto q = split(q_), k = split(k_), v = split(v_);
    auto attn = torch::softmax(torch::matmul(q * (1.0 / std::sqrt(static_cast<double>(hd))), k.transpose(-2, -1)), -1);
    auto y = torch::matmul(attn, v).transpose(1, 2).reshape({b, n, c});
    y = layers::dropout(y, drop_rate_, is_training());
    if (proj_) y = proj_(y);
    return y.select(1, 0);
  }

  std::string type_;
  double drop_rate_;
  layers::ActFn act_;
  nn::BatchNorm2d norm_{nullptr};
  nn::Linear pre_fc_{nullptr}, fc_{nullptr}, q_{nullptr}, k_{nullptr}, v_{nullptr}, proj_{nullptr};
  int64_t heads_ = 1, feat_size_ = 7;
};
TORCH_MODULE(Head);

LayerFns block_layers(const LayerFns& base, const BlockCfg& b) {
  LayerFns l = base;
  if (b.attn) l.attn = *b.attn;
  if (b.self_attn) l.self_attn = *b.self_attn;
  return l;
}

}  // namespace

StageCfg interleave_blocks(const std::string& type_a, const std::string& type_b, int64_t d,
                           const std::vector<int64_t>& every_list, int64_t every, bool first, const BlockCfg& proto) {
  std::vector<int64_t> picks = every_list;
  if (picks.empty()) {
    for (int64_t i = first ? 0 : every; i < d; i += every + 1) picks.push_back(i);
    if (picks.empty()) picks.push_back(d - 1);
  }
  StageCfg out;
  for (int64_t i = 0; i < d; ++i) {
    BlockCfg b = proto;
    b.d = 1;
    b.type = std::find(picks.begin(), picks.end(), i) != picks.end() ? type_b : type_a;
    out.push_back(b);
  }
  return out;
}

ByobNetImpl::ByobNetImpl(const std::string& name, const ModelCfg& cfg, const ModelArgs& args)
    : BackboneImpl(name, args) {
  LayerFns stage_l;
  stage_l.act = cfg.act;
  stage_l.evo_group_size = cfg.evonorm_group_size;
  stage_l.aa = cfg.aa;
  stage_l.attn = cfg.attn;
  stage_l.self_attn = cfg.self_attn;
  LayerFns stem_l = stage_l;
  stem_l.aa.clear();  // timm keeps anti-aliasing out of the stem

  // ---- stem (timm's create_byob_stem) ----
  const auto round_w = [&](int64_t c) {
    return static_cast<int64_t>(std::nearbyint(static_cast<double>(c) * cfg.width_factor));
  };
  std::vector<int64_t> stem_list;
  int64_t stem_chs = 0;
  if (cfg.stem_chs.size() > 1) {
    for (auto c : cfg.stem_chs) stem_list.push_back(round_w(c));
    stem_chs = stem_list.back();
  } else {
    stem_chs = round_w(cfg.stem_chs.empty() || cfg.stem_chs[0] == 0 ? cfg.blocks[0][0].c : cfg.stem_chs[0]);
  }
  const auto& st = cfg.stem_type;
  const auto& pool = cfg.stem_pool;
  std::vector<FeatureInfo> stem_feats;  // timm's stem feature_info; the last is the stem's output
  // A Stem stack: convs (ConvNormAct, or plain convs for the first num_rep - num_act), then a pool.
  auto build_stack = [&](std::vector<int64_t> chs, int64_t kernel, int64_t num_act) {
    stem_is_stack_ = true;
    auto stem = register_module("stem", std::make_shared<nn::Module>());
    const int64_t n = static_cast<int64_t>(chs.size());
    std::vector<int64_t> strides(static_cast<size_t>(n), 1);
    strides[0] = 2;
    if (pool.empty()) strides.back() = 2;  // stride 4 without a pool: the last conv strides too
    int64_t prev = args.in_chans(), red = 1;
    std::string prev_name;
    for (int64_t i = 0; i < n; ++i) {
      const auto c = chs[static_cast<size_t>(i)], s = strides[static_cast<size_t>(i)];
      const auto conv_name = "conv" + std::to_string(i + 1);
      if (i > 0 && s > 1) {
        stem_feat_idx_ = i - 1;
        stem_feats.push_back({"stem." + prev_name, prev, red});
      }
      nn::AnyModule m;
      if (i >= n - num_act) {
        m = nn::AnyModule(cna(prev, c, kernel, stem_l, s));
      } else {
        m = nn::AnyModule(nn::Conv2d(
            nn::Conv2dOptions(prev, c, kernel).stride(s).padding(layers::get_padding(kernel, s)).bias(false)));
      }
      stem->register_module(conv_name, m.ptr());
      stem_convs_.push_back(std::move(m));
      if (i == 0) first_conv_ = "stem.conv1" + std::string(n - num_act > 0 ? "" : ".conv");
      prev = c;
      red *= s;
      prev_name = conv_name;
    }
    if (!pool.empty()) {
      stem_feat_idx_ = n - 1;
      stem_feats.push_back({"stem." + prev_name, prev, red});
      if (pool == "max2") {
        stem_pool_ = [](const torch::Tensor& x) { return torch::max_pool2d(x, {2, 2}, {2, 2}); };
      } else if (pool == "avg2") {
        stem_pool_ = [](const torch::Tensor& x) { return torch::avg_pool2d(x, {2, 2}, {2, 2}); };
      } else if (pool.find("max") != std::string::npos) {
        stem_pool_ = [](const torch::Tensor& x) { return torch::max_pool2d(x, {3, 3}, {2, 2}, {1, 1}); };
      } else {
        stem_pool_ = [](const torch::Tensor& x) {
          return torch::avg_pool2d(x, {3, 3}, {2, 2}, {1, 1}, false, false);
        };
      }
      red *= 2;
      prev_name = "pool";
    }
    stem_feats.push_back({"stem." + prev_name, prev, red});
  };
  auto single = [&](nn::AnyModule m, const std::string& first_conv) {
    register_module("stem", m.ptr());
    stem_convs_.push_back(std::move(m));
    stem_feats.push_back({"stem", stem_chs, 2});
    first_conv_ = first_conv;
  };
  if (st.find("quad") != std::string::npos) {
    std::vector<int64_t> chs;
    for (int i = 3; i >= 0; --i) chs.push_back(static_cast<int64_t>(std::nearbyint(stem_chs * std::pow(0.5, i))));
    build_stack(chs, 3, st.find("quad2") != std::string::npos ? 2 : 4);
  } else if (st.find("tiered") != std::string::npos) {
    build_stack({3 * stem_chs / 8, stem_chs / 2, stem_chs}, 3, 3);
  } else if (st.find("deep") != std::string::npos) {
    build_stack({stem_chs, stem_chs, stem_chs}, 3, 3);
  } else if (st.find("rep") != std::string::npos) {
    single(nn::AnyModule(RepVggBlock(args.in_chans(), stem_chs, 3, 2, 1, 1, 0, 0.0, stem_l)), "stem.conv_kxk.conv");
  } else if (st.find("one") != std::string::npos) {
    single(mobileone_block(args.in_chans(), stem_chs, 3, 2, 0, 1, false, 0.0, stem_l), "stem.conv_kxk.0.conv");
  } else if (st.find("7x7") != std::string::npos) {
    if (!pool.empty()) build_stack({stem_chs}, 7, 1);
    else single(nn::AnyModule(cna(args.in_chans(), stem_chs, 7, stem_l, 2)), "stem.conv");
  } else {
    if (!stem_list.empty()) build_stack(stem_list, 3, static_cast<int64_t>(stem_list.size()));
    else if (!pool.empty()) build_stack({stem_chs}, 3, 1);
    else single(nn::AnyModule(cna(args.in_chans(), stem_chs, 3, stem_l, 2)), "stem.conv");
  }
  if (stem_feats.size() > 2) throw std::invalid_argument(name + ": stems with several intermediate features");

  // ---- feature layout and stage geometry (timm's create_byob_stages) ----
  std::vector<StageCfg> block_cfgs;
  for (const auto& stage : cfg.blocks) {
    StageCfg expanded;
    for (const auto& b : stage)
      for (int64_t i = 0; i < b.d; ++i) {
        expanded.push_back(b);
        expanded.back().d = 1;
      }
    block_cfgs.push_back(expanded);
  }
  num_stages_ = static_cast<int64_t>(block_cfgs.size());
  std::vector<int64_t> depths;
  for (const auto& s : block_cfgs) depths.push_back(static_cast<int64_t>(s.size()));
  const auto dpr = layers::drop_path_rates(args.drop_path_rate(), depths);

  for (size_t i = 0; i + 1 < stem_feats.size(); ++i) {
    feature_info_.push_back(stem_feats[i]);
    stage_ends_.push_back(0);
  }
  FeatureInfo prev_feat = stem_feats.back();
  int64_t prev_stage = 0;
  int64_t net_stride = prev_feat.reduction, dilation = 1;
  std::vector<int64_t> feat_size;
  if (cfg.img_size > 0) feat_size = {cfg.img_size / net_stride, cfg.img_size / net_stride};
  struct StagePlan {
    int64_t stride, first_dilation, dilation;
    std::vector<int64_t> feat_size;
  };
  std::vector<StagePlan> plans;
  std::vector<int64_t> stage_out;
  int64_t prev_chs = prev_feat.num_chs;
  for (int64_t s = 0; s < num_stages_; ++s) {
    int64_t stride = block_cfgs[static_cast<size_t>(s)][0].s;
    if (stride != 1) {
      feature_info_.push_back(prev_feat);
      stage_ends_.push_back(prev_stage);
    }
    if (net_stride >= args.output_stride() && stride > 1) {
      dilation *= stride;
      stride = 1;
    }
    net_stride *= stride;
    plans.push_back({stride, dilation == 1 || dilation == 2 ? 1 : 2, dilation, feat_size});
    if (stride > 1 && !feat_size.empty()) feat_size = {feat_size[0] / stride, feat_size[1] / stride};
    prev_chs = layers::make_divisible(static_cast<double>(block_cfgs[static_cast<size_t>(s)].back().c) * cfg.width_factor);
    stage_out.push_back(prev_chs);
    prev_feat = {"stages." + std::to_string(s), prev_chs, net_stride};
    prev_stage = s + 1;
  }
  const int64_t num_features =
      cfg.num_features > 0 ? static_cast<int64_t>(std::nearbyint(cfg.width_factor * cfg.num_features)) : prev_chs;
  feature_info_.push_back({"final_conv", num_features, net_stride});
  stage_ends_.push_back(num_stages_);

  // ---- stages, built up to the last feature needed ----
  const int64_t last = layers::last_feature_index(args, static_cast<int64_t>(feature_info_.size()), name);
  const int64_t build_stages = stage_ends_[static_cast<size_t>(last)];
  available_features_ = last + 1;
  stages_ = register_module("stages", nn::Sequential());
  int64_t in = stem_feats.back().num_chs;
  for (int64_t s = 0; s < build_stages; ++s) {
    const auto& plan = plans[static_cast<size_t>(s)];
    Stage stage;
    int64_t first_dilation = plan.first_dilation;
    auto fs = plan.feat_size;
    for (size_t b = 0; b < block_cfgs[static_cast<size_t>(s)].size(); ++b) {
      const auto& bc = block_cfgs[static_cast<size_t>(s)][b];
      const int64_t out = layers::make_divisible(static_cast<double>(bc.c) * cfg.width_factor);
      BlockArgs a{in,
                  out,
                  b == 0 ? plan.stride : 1,
                  first_dilation,
                  plan.dilation,
                  bc.gs_fn ? bc.gs_fn(out, static_cast<int64_t>(b)) : bc.gs,
                  bc.br,
                  cfg.downsample,
                  dpr[static_cast<size_t>(s)][b],
                  fs,
                  bc.kwargs ? *bc.kwargs : cfg.block_kwargs,
                  block_layers(stage_l, bc)};
      stage->add(create_block(bc.type, a));
      first_dilation = plan.dilation;
      in = out;
      if (b == 0 && plan.stride > 1 && !fs.empty()) fs = {fs[0] / plan.stride, fs[1] / plan.stride};
    }
    stages_->push_back(stage);
  }
  if (last == static_cast<int64_t>(feature_info_.size()) - 1) {
    // timm's final_conv is an Identity without num_features; the features wrapper still names it.
    if (cfg.num_features > 0) final_conv_ = nn::AnyModule(register_module("final_conv", cna(in, num_features, 1, stage_l)));
    else register_module("final_conv", nn::Identity());
  }

  if (!args.features_only()) {
    const int64_t head_feat = cfg.img_size > 0 ? cfg.img_size / net_stride : 7;
    head_ = nn::AnyModule(register_module("head", Head(cfg.head_type, num_features, args.num_classes(),
                                                       cfg.head_hidden_size, cfg.act, head_feat, head_drop_rate())));
  }
}

torch::Tensor ByobNetImpl::run_stem(const torch::Tensor& x, torch::Tensor* intermediate) {
  auto y = x;
  for (size_t i = 0; i < stem_convs_.size(); ++i) {
    y = stem_convs_[i].forward(y);
    if (intermediate && static_cast<int64_t>(i) == stem_feat_idx_) *intermediate = y;
  }
  if (stem_pool_) y = stem_pool_(y);
  if (intermediate && !intermediate->defined()) *intermediate = y;
  return y;
}

std::vector<torch::Tensor> ByobNetImpl::forward_intermediates(const torch::Tensor& x,
                                                             const std::vector<int64_t>& indices) {
  layers::check_feature_indices(indices, available_features_, model_name());
  std::vector<torch::Tensor> out;
  torch::Tensor inter;
  auto y = run_stem(x, &inter);
  size_t next = 0;
  auto take = [&](int64_t stage, const torch::Tensor& t) {
    while (next < indices.size() && stage_ends_[static_cast<size_t>(indices[next])] == stage) {
      out.push_back(t);
      ++next;
    }
  };
  take(0, inter);
  for (int64_t s = 1; next < indices.size(); ++s) {
    y = stages_[static_cast<size_t>(s - 1)]->as<Stage>()->forward(y);
    if (s == num_stages_ && !final_conv_.is_empty()) y = final_conv_.forward(y);
    take(s, y);
  }
  return out;
}

torch::Tensor ByobNetImpl::forward(const torch::Tensor& x) {
  check_classifier();
  auto y = run_stem(x, nullptr);
  for (size_t i = 0; i < stages_->size(); ++i) y = stages_[i]->as<Stage>()->forward(y);
  if (!final_conv_.is_empty()) y = final_conv_.forward(y);
  return head_.forward(y);
}

std::vector<std::string> ByobNetImpl::flattened_children() const {
  if (stem_is_stack_) return {"stem", "stages"};
  return {"stages"};
}

namespace {

ModelCfg resnet_cfg(std::vector<StageCfg> blocks, int64_t stem, const std::string& stem_type,
                    const std::string& stem_pool, const std::string& act = "relu", const std::string& attn = "",
                    int64_t num_features = 0) {
  ModelCfg c;
  c.blocks = std::move(blocks);
  c.stem_chs = {stem};
  c.stem_type = stem_type;
  c.stem_pool = stem_pool;
  c.act = act;
  c.attn.layer = attn;
  c.num_features = num_features;
  return c;
}

BlockCfg blk(const std::string& type, int64_t d, int64_t c, int64_t s, int64_t gs, double br) {
  BlockCfg b;
  b.type = type;
  b.d = d;
  b.c = c;
  b.s = s;
  b.gs = gs;
  b.br = br;
  return b;
}

std::vector<StageCfg> four(const std::string& type, std::vector<int64_t> d, std::vector<int64_t> c,
                           std::vector<int64_t> s, int64_t gs, std::vector<double> br) {
  std::vector<StageCfg> out;
  for (size_t i = 0; i < d.size(); ++i) out.push_back({blk(type, d[i], c[i], s[i], gs, br[i])});
  return out;
}

ModelCfg repvgg(std::vector<int64_t> d, std::vector<double> wf, int64_t groups, int64_t stem) {
  ModelCfg c;
  const std::vector<int64_t> chs = {64, 128, 256, 512};
  for (size_t i = 0; i < 4; ++i) {
    auto b = blk("rep", d[i], static_cast<int64_t>(static_cast<double>(chs[i]) * wf[i]), 2, 0, 1.0);
    if (groups > 0)
      b.gs_fn = [groups](int64_t out, int64_t idx) { return (idx + 1) % 2 == 0 ? out / groups : int64_t{0}; };
    c.blocks.push_back({b});
  }
  c.stem_type = "rep";
  c.stem_chs = {stem};
  return c;
}

ModelCfg mobileone(std::vector<double> wf, int64_t branches, int64_t stem, std::vector<int64_t> se = {0, 0, 0, 0}) {
  ModelCfg c;
  const std::vector<int64_t> depths = {2, 8, 10, 1}, chs = {64, 128, 256, 512};
  int64_t prev = std::min<int64_t>(64, static_cast<int64_t>(64 * wf[0]));
  for (size_t s = 0; s < 4; ++s) {
    StageCfg stage;
    for (int64_t i = 0; i < depths[s]; ++i) {
      const auto out = static_cast<int64_t>(static_cast<double>(chs[s]) * wf[s]);
      BlockKwargs kw;
      kw.num_conv_branches = branches;
      auto dw = blk("one", 1, prev, 2, 1, 1.0);
      dw.kwargs = kw;
      auto pw = blk("one", 1, out, 2, 0, 1.0);
      kw.kernel_size = 1;
      pw.kwargs = kw;
      if (i >= depths[s] - se[s]) dw.attn = pw.attn = AttnCfg{"se"};
      stage.push_back(dw);
      stage.push_back(pw);
      prev = out;
    }
    c.blocks.push_back(stage);
  }
  c.stem_type = "one";
  c.stem_chs = {stem};
  return c;
}

ModelCfg regnetz(std::vector<int64_t> d, std::vector<int64_t> c, int64_t first_stride, int64_t gs, double br,
                 int64_t stem, const std::string& stem_type, int64_t num_features, int64_t evo = 0) {
  ModelCfg m;
  m.blocks = four("bottle", d, c, {first_stride, 2, 2, 2}, gs, {br, br, br, br});
  m.stem_chs = {stem};
  m.stem_type = stem_type;
  m.stem_pool = "";
  m.downsample = "";
  m.num_features = num_features;
  m.act = "silu";
  m.evonorm_group_size = evo;
  m.attn = AttnCfg{"se", 0.25};
  m.block_kwargs.bottle_in = true;
  m.block_kwargs.linear_out = true;
  return m;
}

ModelCfg clip(std::vector<int64_t> d, double wf, const std::string& head, int64_t img) {
  ModelCfg m;
  m.blocks = four("bottle", d, {256, 512, 1024, 2048}, {1, 2, 2, 2}, 0, {0.25, 0.25, 0.25, 0.25});
  m.width_factor = wf;
  m.stem_chs = {32, 32, 64};
  m.stem_type = "";
  m.stem_pool = "avg2";
  m.downsample = "avg";
  m.aa = "avg";
  m.head_type = head;
  if (head == "attn_abs") m.img_size = img;
  return m;
}

}  // namespace

void register_family() {
  std::vector<std::pair<std::string, ModelCfg>> models;
  auto gernet = [](std::vector<int64_t> d, std::vector<int64_t> c, int64_t stem, int64_t nf) {
    ModelCfg m;
    m.blocks = {{blk("basic", d[0], c[0], 2, 0, 1.0)},
                {blk("basic", d[1], c[1], 2, 0, 1.0)},
                {blk("bottle", d[2], c[2], 2, 0, 0.25)},
                {blk("bottle", d[3], c[3], 2, 1, 3.0)},
                {blk("bottle", d[4], c[4], 1, 1, 3.0)}};
    m.stem_chs = {stem};
    m.stem_pool = "";
    m.num_features = nf;
    return m;
  };
  models.push_back({"gernet_l", gernet({1, 2, 6, 5, 4}, {128, 192, 640, 640, 640}, 32, 2560)});
  models.push_back({"gernet_m", gernet({1, 2, 6, 4, 1}, {128, 192, 640, 640, 640}, 32, 2560)});
  models.push_back({"gernet_s", gernet({1, 3, 7, 2, 1}, {48, 48, 384, 560, 256}, 13, 1920)});

  const std::vector<int64_t> a_depths = {2, 4, 14, 1}, b_depths = {4, 6, 16, 1};
  models.push_back({"repvgg_a0", repvgg(a_depths, {0.75, 0.75, 0.75, 2.5}, 0, 48)});
  models.push_back({"repvgg_a1", repvgg(a_depths, {1, 1, 1, 2.5}, 0, 64)});
  models.push_back({"repvgg_a2", repvgg(a_depths, {1.5, 1.5, 1.5, 2.75}, 0, 64)});
  models.push_back({"repvgg_b0", repvgg(b_depths, {1, 1, 1, 2.5}, 0, 64)});
  models.push_back({"repvgg_b1", repvgg(b_depths, {2, 2, 2, 4}, 0, 64)});
  models.push_back({"repvgg_b1g4", repvgg(b_depths, {2, 2, 2, 4}, 4, 64)});
  models.push_back({"repvgg_b2", repvgg(b_depths, {2.5, 2.5, 2.5, 5}, 0, 64)});
  models.push_back({"repvgg_b2g4", repvgg(b_depths, {2.5, 2.5, 2.5, 5}, 4, 64)});
  models.push_back({"repvgg_b3", repvgg(b_depths, {3, 3, 3, 5}, 0, 64)});
  models.push_back({"repvgg_b3g4", repvgg(b_depths, {3, 3, 3, 5}, 4, 64)});
  {
    auto m = repvgg({8, 14, 24, 1}, {2.5, 2.5, 2.5, 5}, 0, 64);
    m.attn = AttnCfg{"se", 0.0625, 1};
    models.push_back({"repvgg_d2se", m});
  }

  {
    auto m = resnet_cfg({{blk("bottle", 2, 256, 1, 32, 0.25)},
                         {blk("bottle", 4, 512, 2, 32, 0.25)},
                         {blk("bottle", 6, 1536, 2, 32, 0.25)},
                         {blk("bottle", 4, 1536, 2, 1, 1.0)}},
                        128, "quad2", "", "silu", "", 2048);
    models.push_back({"resnet51q", m});
    auto edge = blk("edge", 1, 256, 1, 0, 1.0);
    edge.kwargs = BlockKwargs{};
    m = resnet_cfg({{edge},
                    {blk("bottle", 4, 512, 2, 32, 0.25)},
                    {blk("bottle", 6, 1536, 2, 32, 0.25)},
                    {blk("bottle", 4, 1536, 2, 1, 1.0)}},
                   128, "quad", "", "silu", "", 2048);
    m.block_kwargs.extra_conv = true;
    models.push_back({"resnet61q", m});
  }

  const auto q = std::vector<double>{0.25, 0.25, 0.25, 0.25};
  const auto x26 = four("bottle", {2, 2, 2, 2}, {256, 512, 1024, 2048}, {1, 2, 2, 2}, 32, q);
  models.push_back({"resnext26ts", resnet_cfg(x26, 64, "tiered", "maxpool", "silu")});
  models.push_back({"gcresnext26ts", resnet_cfg(x26, 64, "tiered", "maxpool", "silu", "gca")});
  models.push_back({"seresnext26ts", resnet_cfg(x26, 64, "tiered", "maxpool", "silu", "se")});
  models.push_back({"eca_resnext26ts", resnet_cfg(x26, 64, "tiered", "maxpool", "silu", "eca")});
  {
    auto m = resnet_cfg(x26, 64, "tiered", "maxpool", "silu", "bat");
    m.attn.block_size = 8;
    models.push_back({"bat_resnext26ts", m});
  }
  const auto r33 = four("bottle", {2, 3, 3, 2}, {256, 512, 1536, 1536}, {1, 2, 2, 2}, 0, q);
  models.push_back({"resnet32ts", resnet_cfg(r33, 64, "tiered", "", "silu")});
  models.push_back({"resnet33ts", resnet_cfg(r33, 64, "tiered", "", "silu", "", 1280)});
  models.push_back({"gcresnet33ts", resnet_cfg(r33, 64, "tiered", "", "silu", "gca", 1280)});
  models.push_back({"seresnet33ts", resnet_cfg(r33, 64, "tiered", "", "silu", "se", 1280)});
  models.push_back({"eca_resnet33ts", resnet_cfg(r33, 64, "tiered", "", "silu", "eca", 1280)});
  models.push_back({"gcresnet50t", resnet_cfg(four("bottle", {3, 4, 6, 3}, {256, 512, 1024, 2048}, {1, 2, 2, 2}, 0, q),
                                              64, "tiered", "", "relu", "gca")});
  models.push_back({"gcresnext50ts", resnet_cfg(four("bottle", {3, 4, 6, 3}, {256, 512, 1024, 2048}, {1, 2, 2, 2}, 32, q),
                                                64, "tiered", "maxpool", "silu", "gca")});

  models.push_back({"regnetz_b16", regnetz({2, 6, 12, 2}, {48, 96, 192, 288}, 2, 16, 3, 32, "3x3", 1536)});
  models.push_back({"regnetz_c16", regnetz({2, 6, 12, 2}, {48, 96, 192, 288}, 2, 16, 4, 32, "3x3", 1536)});
  models.push_back({"regnetz_d32", regnetz({3, 6, 12, 3}, {64, 128, 256, 384}, 1, 32, 4, 64, "tiered", 1792)});
  models.push_back({"regnetz_d8", regnetz({3, 6, 12, 3}, {64, 128, 256, 384}, 1, 8, 4, 64, "tiered", 1792)});
  models.push_back({"regnetz_e8", regnetz({3, 8, 16, 3}, {96, 192, 384, 512}, 1, 8, 4, 64, "tiered", 2048)});
  models.push_back({"regnetz_b16_evos", regnetz({2, 6, 12, 2}, {48, 96, 192, 288}, 2, 16, 3, 32, "3x3", 1536, 16)});
  models.push_back({"regnetz_c16_evos", regnetz({2, 6, 12, 2}, {48, 96, 192, 288}, 2, 16, 4, 32, "3x3", 1536, 16)});
  models.push_back({"regnetz_d8_evos", regnetz({3, 6, 12, 3}, {64, 128, 256, 384}, 1, 8, 4, 64, "deep", 1792, 16)});

  models.push_back({"mobileone_s0", mobileone({0.75, 1.0, 1.0, 2.0}, 4, 48)});
  models.push_back({"mobileone_s1", mobileone({1.5, 1.5, 2.0, 2.5}, 1, 64)});
  models.push_back({"mobileone_s2", mobileone({1.5, 2.0, 2.5, 4.0}, 1, 64)});
  models.push_back({"mobileone_s3", mobileone({2.0, 2.5, 3.0, 4.0}, 1, 64)});
  models.push_back({"mobileone_s4", mobileone({3.0, 3.5, 3.5, 4.0}, 1, 64, {0, 0, 5, 1})});

  // CLIP towers: (depths, width factor, image size, embedding width = default num_classes).
  struct Clip {
    std::string name;
    std::vector<int64_t> d;
    double wf;
    int64_t img, classes;
  };
  const std::vector<Clip> clips = {{"resnet50_clip", {3, 4, 6, 3}, 1.0, 224, 1024},
                                   {"resnet101_clip", {3, 4, 23, 3}, 1.0, 224, 512},
                                   {"resnet50x4_clip", {4, 6, 10, 6}, 1.25, 288, 640},
                                   {"resnet50x16_clip", {6, 8, 18, 8}, 1.5, 384, 768},
                                   {"resnet50x64_clip", {3, 15, 36, 10}, 2.0, 448, 1024}};
  std::vector<std::pair<std::string, ModelCfg>> clip_models;
  std::map<std::string, int64_t> clip_classes;
  for (const auto& c : clips) {
    clip_models.push_back({c.name, clip(c.d, c.wf, "attn_abs", c.img)});
    clip_classes[c.name] = c.classes;
    clip_models.push_back({c.name + "_gap", clip(c.d, c.wf, "classifier", c.img)});
    clip_classes[c.name + "_gap"] = 0;  // timm gives the pooled towers no classifier
  }
  {
    auto m = clip({3, 4, 6, 3}, 1.0, "mlp", 224);
    m.head_hidden_size = 1024;
    models.push_back({"resnet50_mlp", m});
  }
  {
    ModelCfg m;
    m.blocks = {{blk("edge", 1, 32, 2, 0, 0.5)},
                {blk("dark", 1, 64, 2, 0, 0.5)},
                {blk("basic", 1, 128, 2, 32, 0.25)},
                {blk("bottle", 1, 256, 2, 64, 0.25)}};
    m.stem_chs = {24};
    m.downsample = "avg";
    m.stem_pool = "";
    m.attn = AttnCfg{"se", 0.25};
    models.push_back({"test_byobnet", m});
  }
  register_configs<ByobNetImpl>("byobnet", models, [](ModelEntry& entry, const ModelCfg&) {
    if (entry.name.rfind("regnetz", 0) == 0) entry.mean = entry.std = {0.5, 0.5, 0.5};
  });
  register_configs<ByobNetImpl>("byobnet", clip_models, [clip_classes](ModelEntry& entry, const ModelCfg&) {
    entry.mean = {0.48145466, 0.4578275, 0.40821073};
    entry.std = {0.26862954, 0.26130258, 0.27577711};
    entry.num_classes = clip_classes.at(entry.name);
  });
}

}  // namespace byobnet
}  // namespace smp::timm
