#include "timm/models/efficientnet_builder.h"

#include <cmath>
#include <map>

#include "timm/layers/activations.h"
#include "timm/layers/attention2d.h"
#include "timm/layers/cond_conv2d.h"
#include "timm/layers/conv_norm_act.h"
#include "timm/layers/create_aa.h"
#include "timm/layers/create_conv2d.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/evo_norm.h"
#include "timm/layers/global_context.h"
#include "timm/layers/helpers.h"
#include "timm/layers/layer_norm_act.h"
#include "timm/layers/layer_scale.h"
#include "timm/layers/norm_act.h"

namespace smp::timm::effnet {

namespace nn = torch::nn;
using layers::ConvArgs;
using layers::TensorFn;

// ---------------------------------------------------------------------------------------------
// Block strings

namespace {

// Python's round(): halves go to the even neighbour (the default floating-point rounding mode).
int64_t py_round(double v) { return static_cast<int64_t>(std::nearbyint(v)); }

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t pos; (pos = s.find(sep, start)) != std::string::npos; start = pos + 1)
    out.push_back(s.substr(start, pos - start));
  out.push_back(s.substr(start));
  return out;
}

// "3" -> {3}; "3.5.7" -> {3, 5, 7} (timm's _parse_ksize).
std::vector<int64_t> parse_kernels(const std::string& s) {
  std::vector<int64_t> out;
  for (const auto& part : split(s, '.')) out.push_back(std::stoll(part));
  return out;
}

int64_t single_kernel(const std::vector<int64_t>& k, const std::string& block) {
  if (k.size() != 1) throw std::invalid_argument("block '" + block + "': this kernel must be a single size");
  return k[0];
}

}  // namespace

BlockDef decode_block(const std::string& block, int64_t* repeats) {
  const auto ops = split(block, '_');
  BlockDef d;
  d.type = ops[0];
  std::map<std::string, std::string> opt;
  std::optional<bool> skip;
  for (size_t i = 1; i < ops.size(); ++i) {
    const auto& op = ops[i];
    if (op == "noskip") {
      skip = false;
    } else if (op == "skip") {
      skip = true;
    } else if (!op.empty() && op[0] == 'n') {
      static const std::map<std::string, std::string> acts = {
          {"re", "relu"}, {"r6", "relu6"}, {"hs", "hard_swish"}, {"sw", "swish"}, {"mi", "mish"}};
      auto it = acts.find(op.substr(1));
      if (it != acts.end()) d.act = it->second;
    } else {
      // Key letters up to the first digit, value from there on.
      const auto digit = op.find_first_of("0123456789");
      if (digit != std::string::npos) opt[op.substr(0, digit)] = op.substr(digit);
    }
  }
  auto has = [&](const char* key) { return opt.count(key) > 0; };
  auto need = [&](const char* key) -> const std::string& {
    auto it = opt.find(key);
    if (it == opt.end()) throw std::invalid_argument("block '" + block + "' lacks option '" + key + "'");
    return it->second;
  };
  auto kernels_or = [&](const char* key, int64_t fallback) {
    return has(key) ? parse_kernels(opt[key]) : std::vector<int64_t>{fallback};
  };
  if (repeats) *repeats = std::stoll(need("r"));
  d.out_chs = std::stoll(need("c"));
  d.stride = std::stoll(need("s"));
  const double se = has("se") ? std::stod(opt["se"]) : 0.0;
  const bool noskip = skip.has_value() && !*skip;
  if (d.type == "ir") {
    d.dw_kernel = parse_kernels(need("k"));
    d.exp_kernel = kernels_or("a", 1);
    d.pw_kernel = kernels_or("p", 1);
    d.exp_ratio = std::stod(need("e"));
    d.se_ratio = se;
    d.noskip = noskip;
    d.s2d = has("d") && std::stoll(opt["d"]) > 0;
    if (has("cc")) d.num_experts = std::stoll(opt["cc"]);
  } else if (d.type == "ds" || d.type == "dsa") {
    d.dw_kernel = parse_kernels(need("k"));
    d.pw_kernel = kernels_or("p", 1);
    d.se_ratio = se;
    d.pw_act = d.type == "dsa";
    d.noskip = d.type == "dsa" || noskip;
    d.s2d = has("d") && std::stoll(opt["d"]) > 0;
  } else if (d.type == "er") {
    d.exp_kernel = parse_kernels(need("k"));
    d.pw_kernel = kernels_or("p", 1);
    d.exp_ratio = std::stod(need("e"));
    d.force_in_chs = has("fc") ? std::stoll(opt["fc"]) : 0;
    d.se_ratio = se;
    d.noskip = noskip;
  } else if (d.type == "cn") {
    d.kernel = std::stoll(need("k"));
    d.skip = skip.has_value() && *skip;
  } else if (d.type == "uir") {
    d.dw_start = has("a") ? single_kernel(parse_kernels(opt["a"]), block) : 0;
    d.dw_mid = single_kernel(parse_kernels(need("k")), block);
    d.dw_end = has("p") ? single_kernel(parse_kernels(opt["p"]), block) : 0;
    d.exp_ratio = std::stod(need("e"));
    d.se_ratio = se;
    d.noskip = noskip;
  } else if (d.type == "mqa" || d.type == "mha") {
    d.dw_kernel = parse_kernels(need("k"));
    d.num_heads = std::stoll(need("h"));
    d.key_dim = std::stoll(need("d"));
    d.kv_stride = has("v") ? std::stoll(opt["v"]) : 1;
    d.noskip = noskip;
  } else {
    throw std::invalid_argument("unknown block type '" + d.type + "' in '" + block + "'");
  }
  if (has("gs")) d.group_size = std::stoll(opt["gs"]);
  return d;
}

namespace {

// Scales a stage's total repeat count and spreads it over its block definitions, last first.
std::vector<BlockDef> scale_stage_depth(const std::vector<BlockDef>& defs, const std::vector<int64_t>& repeats,
                                        double multiplier, bool round_trunc) {
  int64_t num_repeat = 0;
  for (auto r : repeats) num_repeat += r;
  int64_t scaled = round_trunc ? std::max<int64_t>(1, py_round(static_cast<double>(num_repeat) * multiplier))
                               : static_cast<int64_t>(std::ceil(static_cast<double>(num_repeat) * multiplier));
  std::vector<int64_t> scaled_repeats(repeats.size());
  for (size_t i = repeats.size(); i-- > 0;) {
    const int64_t rs = std::max<int64_t>(
        1, py_round(static_cast<double>(repeats[i]) / static_cast<double>(num_repeat) * static_cast<double>(scaled)));
    scaled_repeats[i] = rs;
    num_repeat -= repeats[i];
    scaled -= rs;
  }
  std::vector<BlockDef> out;
  for (size_t i = 0; i < defs.size(); ++i) out.insert(out.end(), static_cast<size_t>(scaled_repeats[i]), defs[i]);
  return out;
}

}  // namespace

StageDefs decode_arch_def(const std::vector<std::vector<std::string>>& arch, const DecodeOptions& o) {
  if (o.depth_multiplier.size() != 1 && o.depth_multiplier.size() != arch.size())
    throw std::invalid_argument("depth_multiplier needs one value or one per stage");
  StageDefs stages;
  for (size_t si = 0; si < arch.size(); ++si) {
    std::vector<BlockDef> defs;
    std::vector<int64_t> repeats;
    for (const auto& s : arch[si]) {
      int64_t r = 1;
      auto d = decode_block(s, &r);
      if (d.num_experts > 0 && o.experts_multiplier > 1) d.num_experts *= o.experts_multiplier;
      if (!d.group_size && o.group_size) d.group_size = o.group_size;
      defs.push_back(std::move(d));
      repeats.push_back(r);
    }
    double mult = o.depth_multiplier.size() == 1 ? o.depth_multiplier[0] : o.depth_multiplier[si];
    if (o.fix_first_last && (si == 0 || si + 1 == arch.size())) mult = 1.0;
    stages.push_back(scale_stage_depth(defs, repeats, mult, o.depth_round));
  }
  return stages;
}

int64_t round_channels(double channels, double multiplier, int64_t divisor, int64_t channel_min, double round_limit) {
  if (multiplier == 0.0) return static_cast<int64_t>(channels);
  return layers::make_divisible(channels * multiplier, divisor, static_cast<double>(channel_min), round_limit);
}

RoundFn round_fn(double multiplier, int64_t divisor, double round_limit) {
  return [=](double c) { return round_channels(c, multiplier, divisor, 0, round_limit); };
}

// ---------------------------------------------------------------------------------------------
// Layers and blocks

namespace {

nn::AnyModule create_norm_act(const NormSpec& n, int64_t channels, const std::string& act, bool apply_act = true) {
  const std::string a = apply_act ? act : "";
  switch (n.type) {
    case NormType::kBatchNorm:
      return nn::AnyModule(layers::BatchNormAct2d(channels, a, n.eps));
    case NormType::kGroupNorm: {
      const int64_t groups = n.group_size > 0 ? channels / n.group_size : 32;
      if (n.group_size > 0 && channels % n.group_size != 0)
        throw std::invalid_argument("GroupNorm group size " + std::to_string(n.group_size) + " does not divide " +
                                    std::to_string(channels) + " channels");
      return nn::AnyModule(layers::GroupNormAct(groups, channels, a, n.eps));
    }
    case NormType::kLayerNorm:
      return nn::AnyModule(layers::LayerNormAct2d(channels, a, n.eps));
    case NormType::kEvoNormS0:
      return nn::AnyModule(layers::EvoNorm2dS0(channels, 32, n.group_size, apply_act, n.eps));
  }
  throw std::logic_error("unhandled norm type");
}

// timm's num_groups: 0 / unset = a dense conv, otherwise channels / group_size (1 = depthwise).
int64_t num_groups(std::optional<int64_t> group_size, int64_t default_size, int64_t channels) {
  const int64_t gs = group_size.value_or(default_size);
  if (gs == 0) return 1;
  if (channels % gs != 0)
    throw std::invalid_argument("group size " + std::to_string(gs) + " does not divide " + std::to_string(channels) +
                                " channels");
  return channels / gs;
}

// SqueezeExcite of _efficientnet_blocks.py: "conv_reduce" -> act -> "conv_expand" -> gate.
class SqueezeExciteImpl : public nn::Module {
 public:
  SqueezeExciteImpl(int64_t channels, int64_t rd_channels, const std::string& act, const std::string& gate)
      : act_(layers::get_act(act)), gate_(layers::get_act(gate)) {
    conv_reduce_ = register_module("conv_reduce", nn::Conv2d(nn::Conv2dOptions(channels, rd_channels, 1).bias(true)));
    conv_expand_ = register_module("conv_expand", nn::Conv2d(nn::Conv2dOptions(rd_channels, channels, 1).bias(true)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto s = conv_expand_(act_(conv_reduce_(x.mean({2, 3}, /*keepdim=*/true))));
    return x * gate_(s);
  }

 private:
  nn::Conv2d conv_reduce_{nullptr}, conv_expand_{nullptr};
  layers::ActFn act_, gate_;
};
TORCH_MODULE(SqueezeExcite);

// Everything a block needs, resolved by the builder.
struct BlockArgs {
  BlockDef def;
  int64_t in_chs = 0, out_chs = 0, stride = 1, dilation = 1;
  int64_t s2d = 0;  // 1: this block starts space-to-depth
  bool has_skip = false;
  std::string act, pad_type, aa;
  NormSpec norm;
  SeSpec se;
  double se_rd_ratio = 0.0;  // 0 = no SE
  std::optional<double> layer_scale_init;
  std::optional<PrunedBlock> pruned;
  double drop_path_rate = 0.0;  // stochastic depth of the residual branch (blocks with a skip only)
};

// Shared parts: optional SE, anti-aliasing and the residual.
class BlockBase : public nn::Module {
 protected:
  void init_se(const BlockArgs& a, int64_t channels) {
    if (a.se_rd_ratio <= 0.0) return;
    if (a.se.global_context) {
      se_ = nn::AnyModule(layers::GlobalContext(channels, a.se_rd_ratio, a.act));
    } else {
      const double rd = static_cast<double>(channels) * a.se_rd_ratio;
      int64_t rd_chs = a.se.rd_round ? a.se.rd_round(rd) : py_round(rd);
      if (a.pruned) rd_chs = a.pruned->se;
      se_ = nn::AnyModule(SqueezeExcite(channels, rd_chs, a.se.force_act.empty() ? a.act : a.se.force_act, a.se.gate));
    }
    register_module("se", se_.ptr());
  }
  void init_residual(const BlockArgs& a) {
    has_skip_ = a.has_skip;
    drop_path_rate_ = a.drop_path_rate;
  }
  torch::Tensor se(const torch::Tensor& x) { return se_.is_empty() ? x : se_.forward(x); }
  torch::Tensor aa(const torch::Tensor& x) { return aa_ ? aa_(x) : x; }
  torch::Tensor residual(const torch::Tensor& y, const torch::Tensor& shortcut) const {
    return has_skip_ ? layers::drop_path(y, drop_path_rate_, is_training()) + shortcut : y;
  }

  nn::AnyModule se_;
  TensorFn aa_;
  bool has_skip_ = false;
  double drop_path_rate_ = 0.0;
};

nn::AnyModule register_conv(nn::Module& m, const std::string& name, nn::AnyModule conv) {
  m.register_module(name, conv.ptr());
  return conv;
}

nn::AnyModule register_norm(nn::Module& m, const std::string& name, nn::AnyModule norm) {
  m.register_module(name, norm.ptr());
  return norm;
}

// Space-to-depth entry ("conv_s2d", "bn_s2d"): a 2x2 stride-2 conv to 4x the channels; the block's
// depthwise kernel shrinks to (k + 1) / 2 and gets 'SAME' padding when that is 2.
struct SpaceToDepth {
  nn::AnyModule conv, bn;
  int64_t channels = 0;
  std::vector<int64_t> dw_kernel;
  std::string dw_pad;
};

SpaceToDepth make_s2d(nn::Module& m, const BlockArgs& a, int64_t in_chs) {
  SpaceToDepth s;
  s.channels = in_chs * 4;
  s.conv = register_conv(m, "conv_s2d",
                         layers::create_conv2d_pad(in_chs, s.channels, 2, ConvArgs().stride(2).padding("same")));
  s.bn = register_norm(m, "bn_s2d", create_norm_act(a.norm, s.channels, a.act));
  const int64_t k = (single_kernel(a.def.dw_kernel, a.def.type) + 1) / 2;
  s.dw_kernel = {k};
  s.dw_pad = k == 2 ? "same" : a.pad_type;
  return s;
}

class DepthwiseSeparableConvImpl : public BlockBase {
 public:
  explicit DepthwiseSeparableConvImpl(const BlockArgs& a) {
    init_residual(a);
    bool use_aa = !a.aa.empty() && a.stride > 1;
    int64_t in = a.in_chs;
    auto dw_kernel = a.def.dw_kernel;
    auto dw_pad = a.pad_type;
    if (a.s2d == 1) {
      auto s = make_s2d(*this, a, in);
      conv_s2d_ = s.conv;
      bn_s2d_ = s.bn;
      in = s.channels;
      dw_kernel = s.dw_kernel;
      dw_pad = s.dw_pad;
      use_aa = false;
    }
    const int64_t groups = num_groups(a.def.group_size, 1, in);
    conv_dw_ = register_conv(
        *this, "conv_dw",
        layers::create_conv2d(
            in, in, dw_kernel,
            ConvArgs().stride(use_aa ? 1 : a.stride).dilation(a.dilation).groups(groups).padding(dw_pad)));
    bn1_ = register_norm(*this, "bn1", create_norm_act(a.norm, in, a.act));
    if (use_aa) aa_ = layers::create_aa(a.aa, a.out_chs, a.stride);
    init_se(a, in);
    conv_pw_ = register_conv(*this, "conv_pw",
                             layers::create_conv2d(in, a.out_chs, a.def.pw_kernel, ConvArgs().padding(a.pad_type)));
    bn2_ = register_norm(*this, "bn2", create_norm_act(a.norm, a.out_chs, a.act, a.def.pw_act));
  }

  torch::Tensor forward(const torch::Tensor& x) {
    auto y = x;
    if (!conv_s2d_.is_empty()) y = bn_s2d_.forward(conv_s2d_.forward(y));
    y = se(aa(bn1_.forward(conv_dw_.forward(y))));
    y = bn2_.forward(conv_pw_.forward(y));
    return residual(y, x);
  }

 private:
  nn::AnyModule conv_s2d_, bn_s2d_, conv_dw_, bn1_, conv_pw_, bn2_;
};
TORCH_MODULE(DepthwiseSeparableConv);

// InvertedResidual (MBConv); with num_experts > 0 timm's CondConvResidual, whose three convolutions
// mix per-sample expert kernels chosen by "routing_fn".
class InvertedResidualImpl : public BlockBase {
 public:
  explicit InvertedResidualImpl(const BlockArgs& a) {
    init_residual(a);
    bool use_aa = !a.aa.empty() && a.stride > 1;
    int64_t in = a.in_chs;
    auto dw_kernel = a.def.dw_kernel;
    auto dw_pad = a.pad_type;
    const int64_t experts = a.def.num_experts;
    if (a.s2d == 1) {
      if (experts > 0) throw std::invalid_argument("CondConv blocks do not support space-to-depth");
      auto s = make_s2d(*this, a, in);
      conv_s2d_ = s.conv;
      bn_s2d_ = s.bn;
      in = s.channels;
      dw_kernel = s.dw_kernel;
      dw_pad = s.dw_pad;
      use_aa = false;
    }
    const int64_t mid = a.pruned ? a.pruned->mid : layers::make_divisible(static_cast<double>(in) * a.def.exp_ratio);
    const int64_t out = a.pruned ? a.pruned->out : a.out_chs;
    const int64_t groups = num_groups(a.def.group_size, 1, mid);
    const auto dw_args = ConvArgs().stride(use_aa ? 1 : a.stride).dilation(a.dilation).groups(groups).padding(dw_pad);
    if (experts > 0) {
      auto cond = [&](const std::string& name, int64_t cin, int64_t cout, const std::vector<int64_t>& k,
                      const ConvArgs& args) {
        return register_module(name, layers::CondConv2d(cin, cout, single_kernel(k, a.def.type), args, experts));
      };
      cond_pw_ = cond("conv_pw", in, mid, a.def.exp_kernel, ConvArgs().padding(a.pad_type));
      bn1_ = register_norm(*this, "bn1", create_norm_act(a.norm, mid, a.act));
      cond_dw_ = cond("conv_dw", mid, mid, dw_kernel, dw_args);
      bn2_ = register_norm(*this, "bn2", create_norm_act(a.norm, mid, a.act));
      init_se(a, mid);
      cond_pwl_ = cond("conv_pwl", mid, out, a.def.pw_kernel, ConvArgs().padding(a.pad_type));
      bn3_ = register_norm(*this, "bn3", create_norm_act(a.norm, out, a.act, false));
      routing_fn_ = register_module("routing_fn", nn::Linear(in, experts));
      return;
    }
    conv_pw_ = register_conv(*this, "conv_pw",
                             layers::create_conv2d(in, mid, a.def.exp_kernel, ConvArgs().padding(a.pad_type)));
    bn1_ = register_norm(*this, "bn1", create_norm_act(a.norm, mid, a.act));
    conv_dw_ = register_conv(*this, "conv_dw", layers::create_conv2d(mid, mid, dw_kernel, dw_args));
    bn2_ = register_norm(*this, "bn2", create_norm_act(a.norm, mid, a.act));
    if (use_aa) aa_ = layers::create_aa(a.aa, mid, a.stride);
    init_se(a, mid);
    conv_pwl_ = register_conv(*this, "conv_pwl",
                              layers::create_conv2d(mid, out, a.def.pw_kernel, ConvArgs().padding(a.pad_type)));
    bn3_ = register_norm(*this, "bn3", create_norm_act(a.norm, out, a.act, false));
  }

  torch::Tensor forward(const torch::Tensor& x) {
    if (routing_fn_) {
      auto routing = torch::sigmoid(routing_fn_(x.mean({2, 3})));
      auto y = bn1_.forward(cond_pw_(x, routing));
      y = se(bn2_.forward(cond_dw_(y, routing)));
      y = bn3_.forward(cond_pwl_(y, routing));
      return residual(y, x);
    }
    auto y = x;
    if (!conv_s2d_.is_empty()) y = bn_s2d_.forward(conv_s2d_.forward(y));
    y = bn1_.forward(conv_pw_.forward(y));
    y = se(aa(bn2_.forward(conv_dw_.forward(y))));
    y = bn3_.forward(conv_pwl_.forward(y));
    return residual(y, x);
  }

 private:
  nn::AnyModule conv_s2d_, bn_s2d_, conv_pw_, bn1_, conv_dw_, bn2_, conv_pwl_, bn3_;
  layers::CondConv2d cond_pw_{nullptr}, cond_dw_{nullptr}, cond_pwl_{nullptr};
  nn::Linear routing_fn_{nullptr};
};
TORCH_MODULE(InvertedResidual);

// EdgeResidual (FusedMBConv): a full expansion conv, then the point-wise projection.
class EdgeResidualImpl : public BlockBase {
 public:
  explicit EdgeResidualImpl(const BlockArgs& a) {
    init_residual(a);
    const bool use_aa = !a.aa.empty() && a.stride > 1;
    const int64_t base = a.def.force_in_chs > 0 ? a.def.force_in_chs : a.in_chs;
    const int64_t mid = layers::make_divisible(static_cast<double>(base) * a.def.exp_ratio);
    const int64_t groups = num_groups(a.def.group_size, 0, mid);
    conv_exp_ = register_conv(
        *this, "conv_exp",
        layers::create_conv2d(
            a.in_chs, mid, a.def.exp_kernel,
            ConvArgs().stride(use_aa ? 1 : a.stride).dilation(a.dilation).groups(groups).padding(a.pad_type)));
    bn1_ = register_norm(*this, "bn1", create_norm_act(a.norm, mid, a.act));
    if (use_aa) aa_ = layers::create_aa(a.aa, mid, a.stride);
    init_se(a, mid);
    conv_pwl_ = register_conv(*this, "conv_pwl",
                              layers::create_conv2d(mid, a.out_chs, a.def.pw_kernel, ConvArgs().padding(a.pad_type)));
    bn2_ = register_norm(*this, "bn2", create_norm_act(a.norm, a.out_chs, a.act, false));
  }

  torch::Tensor forward(const torch::Tensor& x) {
    auto y = se(aa(bn1_.forward(conv_exp_.forward(x))));
    y = bn2_.forward(conv_pwl_.forward(y));
    return residual(y, x);
  }

 private:
  nn::AnyModule conv_exp_, bn1_, conv_pwl_, bn2_;
};
TORCH_MODULE(EdgeResidual);

// ConvBnAct: conv, norm + act, optional residual.
class ConvBnActImpl : public BlockBase {
 public:
  explicit ConvBnActImpl(const BlockArgs& a) {
    init_residual(a);
    const bool use_aa = !a.aa.empty() && a.stride > 1;
    conv_ = register_conv(*this, "conv",
                          layers::create_conv2d_pad(a.in_chs, a.out_chs, a.def.kernel,
                                                    ConvArgs()
                                                        .stride(use_aa ? 1 : a.stride)
                                                        .dilation(a.dilation)
                                                        .groups(num_groups(a.def.group_size, 0, a.in_chs))
                                                        .padding(a.pad_type)));
    bn1_ = register_norm(*this, "bn1", create_norm_act(a.norm, a.out_chs, a.act));
    if (use_aa) aa_ = layers::create_aa(a.aa, a.out_chs, a.stride);
  }

  torch::Tensor forward(const torch::Tensor& x) { return residual(aa(bn1_.forward(conv_.forward(x))), x); }

 private:
  nn::AnyModule conv_, bn1_;
};
TORCH_MODULE(ConvBnAct);

// timm's ConvNormAct as the MobileNet-V4 blocks use it, with anti-aliasing after the norm when the
// conv is strided.
struct ConvNormAa {
  layers::ConvNormAct conv{nullptr};
  TensorFn aa;
  torch::Tensor operator()(const torch::Tensor& x) { return aa ? aa(conv(x)) : conv(x); }
};

ConvNormAa make_conv_norm(nn::Module& m, const std::string& name, const BlockArgs& a, int64_t in, int64_t out,
                          int64_t kernel, int64_t stride, int64_t groups, bool apply_act, bool allow_aa) {
  const bool use_aa = allow_aa && !a.aa.empty() && stride > 1;
  ConvNormAa c;
  c.conv = m.register_module(name, layers::ConvNormAct(layers::ConvNormActOptions(in, out, kernel)
                                                           .stride(use_aa ? 1 : stride)
                                                           .dilation(a.dilation)
                                                           .groups(groups)
                                                           .act(apply_act ? a.act : "")));
  if (use_aa) c.aa = layers::create_aa(a.aa, out, stride);
  return c;
}

// UniversalInvertedResidual (MobileNet-V4's UIB): optional depthwise convs before ("dw_start"),
// between ("dw_mid") and after ("dw_end") the point-wise expansion / projection, and a layer scale.
class UniversalInvertedResidualImpl : public BlockBase {
 public:
  explicit UniversalInvertedResidualImpl(const BlockArgs& a) {
    // The ConvNormAct layers use PyTorch-style padding and BatchNorm with default settings.
    if (!a.pad_type.empty() || a.norm.type != NormType::kBatchNorm || a.norm.eps != 1e-5)
      throw std::invalid_argument("UniversalInvertedResidual blocks support only default padding and BatchNorm");
    init_residual(a);
    const auto& d = a.def;
    if (d.dw_start) {
      dw_start_ = make_conv_norm(*this, "dw_start", a, a.in_chs, a.in_chs, d.dw_start, d.dw_mid ? 1 : a.stride,
                                 num_groups(d.group_size, 1, a.in_chs), false, true);
    }
    const int64_t mid = layers::make_divisible(static_cast<double>(a.in_chs) * d.exp_ratio);
    pw_exp_ = make_conv_norm(*this, "pw_exp", a, a.in_chs, mid, 1, 1, 1, true, false);
    if (d.dw_mid) {
      dw_mid_ = make_conv_norm(*this, "dw_mid", a, mid, mid, d.dw_mid, a.stride, num_groups(d.group_size, 1, mid), true,
                               true);
    }
    init_se(a, mid);
    pw_proj_ = make_conv_norm(*this, "pw_proj", a, mid, a.out_chs, 1, 1, 1, false, false);
    if (d.dw_end) {
      const int64_t stride = (!d.dw_start && !d.dw_mid) ? a.stride : 1;
      dw_end_ = make_conv_norm(*this, "dw_end", a, a.out_chs, a.out_chs, d.dw_end, stride,
                               num_groups(d.group_size, 1, a.out_chs), false, false);
    }
    if (a.layer_scale_init)
      layer_scale_ = register_module("layer_scale", layers::LayerScale2d(a.out_chs, *a.layer_scale_init));
  }

  torch::Tensor forward(const torch::Tensor& x) {
    auto y = x;
    if (dw_start_.conv) y = dw_start_(y);
    y = pw_exp_(y);
    if (dw_mid_.conv) y = dw_mid_(y);
    y = pw_proj_(se(y));
    if (dw_end_.conv) y = dw_end_(y);
    if (layer_scale_) y = layer_scale_(y);
    return residual(y, x);
  }

 private:
  ConvNormAa dw_start_, pw_exp_, dw_mid_, pw_proj_, dw_end_;
  layers::LayerScale2d layer_scale_{nullptr};
};
TORCH_MODULE(UniversalInvertedResidual);

// MobileAttention: pre-norm ("norm") attention ("attn": multi-query or multi-head) + layer scale.
class MobileAttentionImpl : public BlockBase {
 public:
  explicit MobileAttentionImpl(const BlockArgs& a) {
    init_residual(a);
    const auto& d = a.def;
    norm_ = register_norm(*this, "norm", create_norm_act(a.norm, a.in_chs, a.act, false));
    if (d.type == "mqa") {
      if (a.norm.type != NormType::kBatchNorm)
        throw std::invalid_argument("multi-query attention blocks support only BatchNorm");
      attn_ = nn::AnyModule(layers::MultiQueryAttention2d(layers::MultiQueryAttention2dOptions(a.in_chs, a.out_chs)
                                                              .num_heads(d.num_heads)
                                                              .key_dim(d.key_dim)
                                                              .value_dim(d.key_dim)
                                                              .kv_stride(d.kv_stride)
                                                              .dw_kernel_size(single_kernel(d.dw_kernel, d.type))
                                                              .dilation(a.dilation)
                                                              .padding(a.pad_type)
                                                              .norm_eps(a.norm.eps)));
    } else {
      attn_ = nn::AnyModule(layers::Attention2d(a.in_chs, a.out_chs, d.num_heads, /*bias=*/false));
    }
    register_module("attn", attn_.ptr());
    if (a.layer_scale_init)
      layer_scale_ = register_module("layer_scale", layers::LayerScale2d(a.out_chs, *a.layer_scale_init));
  }

  torch::Tensor forward(const torch::Tensor& x) {
    auto y = attn_.forward(norm_.forward(x));
    if (layer_scale_) y = layer_scale_(y);
    return residual(y, x);
  }

 private:
  nn::AnyModule norm_, attn_;
  layers::LayerScale2d layer_scale_{nullptr};
};
TORCH_MODULE(MobileAttention);

nn::AnyModule make_block(const BlockArgs& a) {
  const auto& t = a.def.type;
  if (t == "ir") return nn::AnyModule(InvertedResidual(a));
  if (t == "ds" || t == "dsa") return nn::AnyModule(DepthwiseSeparableConv(a));
  if (t == "er") return nn::AnyModule(EdgeResidual(a));
  if (t == "cn") return nn::AnyModule(ConvBnAct(a));
  if (t == "uir") return nn::AnyModule(UniversalInvertedResidual(a));
  return nn::AnyModule(MobileAttention(a));
}

// ---------------------------------------------------------------------------------------------
// Builder and model

struct BuiltStages {
  std::vector<nn::Sequential> stages;
  std::vector<FeatureInfo> features;
  std::vector<int64_t> feature_stage;  // 0 = stem, i = after stage i - 1
  int64_t out_chs = 0;
};

BuiltStages build_stages(const ModelConfig& cfg, int64_t in_chs, int64_t output_stride, double drop_path_rate) {
  BuiltStages out;
  const auto& arch = cfg.blocks;
  if (arch.empty() || arch[0].empty()) throw std::invalid_argument("an EfficientNet needs at least one block");
  // timm's builder scales stochastic depth by block index / block count, so even the last block stays
  // below drop_path_rate.
  int64_t num_blocks = 0, block_index = 0;
  for (const auto& stage_defs : arch) num_blocks += static_cast<int64_t>(stage_defs.size());
  int64_t current_stride = 2, current_dilation = 1;
  if (arch[0][0].stride > 1) {
    out.features.push_back({"bn1", in_chs, current_stride});
    out.feature_stage.push_back(0);
  }
  int64_t space2depth = 0;
  int64_t full_in_chs = in_chs;  // unpruned width: pruning keeps the residuals of the full model
  for (size_t si = 0; si < arch.size(); ++si) {
    nn::Sequential stage;
    for (size_t bi = 0; bi < arch[si].size(); ++bi) {
      BlockArgs a;
      a.def = arch[si][bi];
      auto& d = a.def;
      if (d.stride != 1 && d.stride != 2) throw std::invalid_argument("block strides must be 1 or 2");
      int64_t stride = bi >= 1 ? 1 : d.stride;
      // The decoded flag, unless the space-to-depth bookkeeping below overrides it.
      int64_t s2d = d.s2d ? 1 : 0;
      if (!space2depth && d.s2d) {
        if (stride != 1) throw std::invalid_argument("space-to-depth blocks must not be strided");
        space2depth = 1;
      }
      if (space2depth > 0) {
        if (space2depth == 2 && stride == 2) {
          // The stride-2 block after space-to-depth ends it and runs at stride 1 on the narrower input.
          stride = 1;
          d.exp_ratio /= 4;
          space2depth = 0;
        } else {
          s2d = space2depth;
        }
      }
      const bool last_block = bi + 1 == arch[si].size();
      const bool extract = last_block && (si + 1 == arch.size() || arch[si + 1][0].stride > 1);

      int64_t next_dilation = current_dilation;
      if (stride > 1) {
        const int64_t next_output_stride = current_stride * stride;
        if (next_output_stride > output_stride) {
          next_dilation = current_dilation * stride;
          stride = 1;
        } else {
          current_stride = next_output_stride;
        }
      }
      a.stride = stride;
      a.dilation = current_dilation;
      current_dilation = next_dilation;

      a.in_chs = in_chs;
      a.out_chs = cfg.round_chs(static_cast<double>(d.out_chs));
      if (s2d > 0) a.out_chs *= 4;
      if (d.force_in_chs > 0) d.force_in_chs = cfg.round_chs(static_cast<double>(d.force_in_chs));
      a.s2d = s2d;
      a.act = d.act.empty() ? cfg.act : d.act;
      a.pad_type = cfg.pad_type;
      a.aa = cfg.aa;
      a.norm = cfg.norm;
      a.se = cfg.se;
      a.layer_scale_init = cfg.layer_scale_init;
      a.drop_path_rate = drop_path_rate * static_cast<double>(block_index++) / static_cast<double>(num_blocks);
      if (d.se_ratio > 0.0) {
        double ratio = d.se_ratio;
        if (!cfg.se_from_exp) ratio /= d.exp_ratio;
        if (s2d == 1) ratio /= 4;
        a.se_rd_ratio = ratio;
      }
      const bool same_shape = a.stride == 1 && full_in_chs == a.out_chs;
      a.has_skip = d.type == "cn" ? d.skip && same_shape : same_shape && !d.noskip;
      for (const auto& p : cfg.pruned)
        if (p.stage == static_cast<int64_t>(si) && p.block == static_cast<int64_t>(bi)) a.pruned = p;

      stage->push_back(make_block(a));
      if (space2depth == 1) space2depth = 2;
      if (extract) {
        out.features.push_back({"blocks." + std::to_string(si), a.out_chs, current_stride});
        out.feature_stage.push_back(static_cast<int64_t>(si) + 1);
      }
      // A pruned block's real output width feeds the next block.
      in_chs = a.pruned ? a.pruned->out : a.out_chs;
      full_in_chs = a.out_chs;
    }
    out.stages.push_back(stage);
  }
  out.out_chs = in_chs;
  return out;
}

class EfficientNetImpl : public BackboneImpl {
 public:
  EfficientNetImpl(const std::string& name, const ModelConfig& cfg, const ModelArgs& args)
      : BackboneImpl(name, args), head_(cfg.head) {
    const int64_t stem = cfg.fix_stem ? cfg.stem_size : cfg.round_chs(static_cast<double>(cfg.stem_size));
    conv_stem_ = register_conv(*this, "conv_stem",
                               layers::create_conv2d_pad(args.in_chans(), stem, cfg.stem_kernel_size,
                                                         ConvArgs().stride(2).padding(cfg.pad_type)));
    bn1_ = register_norm(*this, "bn1", create_norm_act(cfg.norm, stem, cfg.act));

    auto built = build_stages(cfg, stem, args.output_stride(), args.drop_path_rate());
    blocks_ = register_module("blocks", nn::ModuleList());
    for (auto& s : built.stages) {
      blocks_->push_back(s);
      stages_.push_back(s);
    }
    feature_info_ = built.features;
    feature_stage_ = built.feature_stage;

    if (args.features_only()) return;
    const int64_t head_chs = built.out_chs;
    if (head_ == HeadType::kEfficientNet) {
      num_features_ = head_chs;
      if (cfg.num_features > 0) {
        num_features_ = cfg.num_features;
        conv_head_ =
            register_conv(*this, "conv_head",
                          layers::create_conv2d_pad(head_chs, num_features_, 1, ConvArgs().padding(cfg.pad_type)));
        norm_head_ = register_norm(*this, "bn2", create_norm_act(cfg.norm, num_features_, cfg.act));
      }
    } else {
      num_features_ = cfg.num_features;
      conv_head_ = register_conv(
          *this, "conv_head",
          layers::create_conv2d_pad(head_chs, num_features_, 1,
                                    ConvArgs().padding(cfg.pad_type).bias(cfg.head_bias && !cfg.head_norm)));
      if (cfg.head_norm)
        norm_head_ = register_norm(*this, "norm_head", create_norm_act(cfg.norm, num_features_, cfg.act));
      else
        act2_ = layers::get_act(cfg.act);
    }
    if (args.num_classes() > 0)
      classifier_ = register_module("classifier", nn::Linear(num_features_, args.num_classes()));
  }

  std::vector<int64_t> default_out_indices() const override {
    std::vector<int64_t> out;
    for (int64_t i = 0; i < std::min<int64_t>(5, static_cast<int64_t>(feature_info_.size())); ++i) out.push_back(i);
    return out;
  }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    const auto n = static_cast<int64_t>(feature_info_.size());
    layers::check_feature_indices(indices, n, model_name());
    std::vector<torch::Tensor> out;
    if (indices.empty()) return out;
    auto y = stem(x);
    size_t next = 0;
    auto take = [&](int64_t stage) {
      if (next < indices.size() && feature_stage_[static_cast<size_t>(indices[next])] == stage) {
        out.push_back(y);
        ++next;
      }
    };
    take(0);
    for (size_t i = 0; next < indices.size(); ++i) {
      y = stages_[i]->forward(y);
      take(static_cast<int64_t>(i) + 1);
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    auto y = stem(x);
    for (auto& s : stages_) y = s->forward(y);
    if (head_ == HeadType::kEfficientNet) {
      if (!conv_head_.is_empty()) y = norm_head_.forward(conv_head_.forward(y));
      return pool_and_classify(y, classifier_);
    }
    // MobileNetV3: the 1x1 head conv runs on the pooled map.
    y = conv_head_.forward(y.mean({2, 3}, /*keepdim=*/true));
    y = norm_head_.is_empty() ? act2_(y) : norm_head_.forward(y);
    return classify(y.flatten(1), classifier_);
  }

  std::string first_conv() const override { return "conv_stem"; }

 private:
  torch::Tensor stem(const torch::Tensor& x) { return bn1_.forward(conv_stem_.forward(x)); }

  HeadType head_;
  nn::AnyModule conv_stem_, bn1_, conv_head_, norm_head_;
  layers::ActFn act2_;
  nn::ModuleList blocks_{nullptr};
  std::vector<nn::Sequential> stages_;
  std::vector<int64_t> feature_stage_;
  nn::Linear classifier_{nullptr};
  int64_t num_features_ = 0;
};

}  // namespace

Backbone create_efficientnet(const std::string& name, const ModelConfig& config, const ModelArgs& args) {
  return std::make_shared<EfficientNetImpl>(name, config, args);
}

}  // namespace smp::timm::effnet
