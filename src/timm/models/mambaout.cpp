// timm's MambaOut (mambaout.py): gated-CNN blocks, channels-last (NHWC) inside.
#include <smp/timm.h>

#include "timm/families.h"
#include "timm/layers/activations.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"
#include "timm/layers/layer_scale.h"

namespace smp::timm {

namespace nn = torch::nn;

namespace mambaout {
namespace {

struct MambaOutConfig {
  std::vector<int64_t> depths, dims;
  double expansion_ratio = 8.0 / 3.0, conv_ratio = 1.0;
  bool stem_mid_norm = true;
  bool downsample_norm_first = false;  // "conv_nf" (the _rw models) vs "conv"
  double ls_init_value = 0.0;          // > 0: LayerScale
  std::string act = "gelu";
  bool norm_mlp_head = false;          // ClNormMlpClassifierHead vs MlpHead
};

nn::LayerNorm layer_norm(int64_t dim) { return nn::LayerNorm(nn::LayerNormOptions({dim}).eps(1e-6)); }
nn::Conv2d conv3x3_s2(int64_t in, int64_t out) { return nn::Conv2d(nn::Conv2dOptions(in, out, 3).stride(2).padding(1)); }
torch::Tensor to_nchw(const torch::Tensor& x) { return x.permute({0, 3, 1, 2}); }
torch::Tensor to_nhwc(const torch::Tensor& x) { return x.permute({0, 2, 3, 1}); }

class StemImpl : public nn::Module {
 public:
  StemImpl(int64_t in, int64_t out, const MambaOutConfig& c) : act_(layers::get_act(c.act)) {
    conv1 = register_module("conv1", conv3x3_s2(in, out / 2));
    if (c.stem_mid_norm) norm1 = register_module("norm1", layer_norm(out / 2));
    conv2 = register_module("conv2", conv3x3_s2(out / 2, out));
    norm2 = register_module("norm2", layer_norm(out));
  }
  // NCHW in, NHWC out.
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = conv1(x);
    if (norm1) y = to_nchw(norm1(to_nhwc(y)));
    return norm2(to_nhwc(conv2(act_(y))));
  }

 private:
  layers::ActFn act_;
  nn::Conv2d conv1{nullptr}, conv2{nullptr};
  nn::LayerNorm norm1{nullptr}, norm2{nullptr};
};
TORCH_MODULE(Stem);

class DownsampleImpl : public nn::Module {
 public:
  DownsampleImpl(int64_t in, int64_t out, bool norm_first) : norm_first_(norm_first) {
    if (norm_first) norm = register_module("norm", layer_norm(in));
    conv = register_module("conv", conv3x3_s2(in, out));
    if (!norm_first) norm = register_module("norm", layer_norm(out));
  }
  torch::Tensor forward(const torch::Tensor& x) {  // NHWC
    if (norm_first_) return to_nhwc(conv(to_nchw(norm(x))));
    return norm(to_nhwc(conv(to_nchw(x))));
  }

 private:
  bool norm_first_;
  nn::LayerNorm norm{nullptr};
  nn::Conv2d conv{nullptr};
};
TORCH_MODULE(Downsample);

// fc1 splits into a gate, an identity part and a part convolved depthwise; fc2 merges them.
class GatedConvBlockImpl : public nn::Module {
 public:
  GatedConvBlockImpl(int64_t dim, const MambaOutConfig& c, double drop_path_rate)
      : act_(layers::get_act(c.act)), drop_path_rate_(drop_path_rate) {
    hidden_ = static_cast<int64_t>(c.expansion_ratio * static_cast<double>(dim));
    conv_channels_ = static_cast<int64_t>(c.conv_ratio * static_cast<double>(dim));
    norm = register_module("norm", layer_norm(dim));
    fc1 = register_module("fc1", nn::Linear(dim, hidden_ * 2));
    conv = register_module("conv", nn::Conv2d(nn::Conv2dOptions(conv_channels_, conv_channels_, 7)
                                                  .padding(3)
                                                  .groups(conv_channels_)));
    fc2 = register_module("fc2", nn::Linear(hidden_, dim));
    if (c.ls_init_value > 0) ls = register_module("ls", layers::LayerScale(dim, c.ls_init_value));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto parts = torch::split_with_sizes(fc1(norm(x)), {hidden_, hidden_ - conv_channels_, conv_channels_}, -1);
    auto convolved = to_nhwc(conv(to_nchw(parts[2])));
    auto y = fc2(act_(parts[0]) * torch::cat({parts[1], convolved}, -1));
    return x + layers::drop_path(ls ? ls(y) : y, drop_path_rate_, is_training());
  }

 private:
  int64_t hidden_, conv_channels_;
  layers::ActFn act_;
  double drop_path_rate_;
  nn::LayerNorm norm{nullptr};
  nn::Linear fc1{nullptr}, fc2{nullptr};
  nn::Conv2d conv{nullptr};
  layers::LayerScale ls{nullptr};
};
TORCH_MODULE(GatedConvBlock);

class MambaOutStageImpl : public nn::Module {
 public:
  // One block per stochastic depth rate.
  MambaOutStageImpl(int64_t in, int64_t out, const std::vector<double>& drop_path_rates, bool downsample_stage,
                    const MambaOutConfig& c) {
    if (downsample_stage) downsample = register_module("downsample", Downsample(in, out, c.downsample_norm_first));
    blocks = register_module("blocks", nn::Sequential());
    for (const double rate : drop_path_rates) blocks->push_back(GatedConvBlock(out, c, rate));
  }
  torch::Tensor forward(torch::Tensor x) {  // NHWC
    if (downsample) x = downsample(x);
    return blocks->forward(x);
  }

 private:
  Downsample downsample{nullptr};
  nn::Sequential blocks{nullptr};
};
TORCH_MODULE(MambaOutStage);

class MambaOutImpl : public BackboneImpl {
 public:
  MambaOutImpl(const std::string& name, const MambaOutConfig& c, const ModelArgs& args)
      : BackboneImpl(name, args), head_act_(layers::get_act("gelu")) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " supports output_stride 32 only (got " +
                                  std::to_string(args.output_stride()) + ")");
    const auto n = static_cast<int64_t>(c.dims.size());
    const int64_t last = layers::last_feature_index(args, n, name);
    stem = register_module("stem", Stem(args.in_chans(), c.dims[0], c));
    const auto drop_path_rates = layers::drop_path_rates(args.drop_path_rate(), c.depths);
    stages = register_module("stages", nn::Sequential());
    for (int64_t i = 0; i < n; ++i) {
      const auto u = static_cast<size_t>(i);
      feature_info_.push_back({"stages." + std::to_string(i), c.dims[u], int64_t{4} << i});
      if (i <= last)
        stages->push_back(MambaOutStage(i == 0 ? c.dims[0] : c.dims[u - 1], c.dims[u], drop_path_rates[u], i > 0, c));
    }
    if (args.features_only()) return;
    const auto dim = c.dims.back();
    auto head = register_module("head", std::make_shared<nn::Module>());
    head_norm_ = head->register_module("norm", layer_norm(dim));
    auto pre = head->register_module("pre_logits", std::make_shared<nn::Module>());
    pre_fc_ = pre->register_module("fc", nn::Linear(dim, 4 * dim));
    if (!c.norm_mlp_head) pre_norm_ = pre->register_module("norm", layer_norm(4 * dim));
    if (args.num_classes() > 0) fc_ = head->register_module("fc", nn::Linear(4 * dim, args.num_classes()));
  }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    layers::check_feature_indices(indices, static_cast<int64_t>(stages->size()), model_name());
    std::vector<torch::Tensor> out;
    auto y = stem(x);
    for (int64_t i = 0; out.size() < indices.size(); ++i) {
      y = stages[static_cast<size_t>(i)]->as<MambaOutStage>()->forward(y);
      if (i == indices[out.size()]) out.push_back(to_nchw(y).contiguous());
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    auto y = head_act_(pre_fc_(head_norm_(stages->forward(stem(x)).mean({1, 2}))));
    if (pre_norm_) y = pre_norm_(y);
    return classify(y, fc_);
  }

  std::vector<std::string> flattened_children() const override { return {"stages"}; }
  std::string first_conv() const override { return "stem.conv1"; }

 private:
  layers::ActFn head_act_;
  Stem stem{nullptr};
  nn::Sequential stages{nullptr};
  nn::LayerNorm head_norm_{nullptr}, pre_norm_{nullptr};
  nn::Linear pre_fc_{nullptr}, fc_{nullptr};
};

}  // namespace

void register_family() {
  auto rw = [](std::vector<int64_t> depths, std::vector<int64_t> dims, double expansion, double conv_ratio,
               const std::string& act, double ls) {
    MambaOutConfig c{std::move(depths), std::move(dims), expansion, conv_ratio};
    c.stem_mid_norm = false;
    c.downsample_norm_first = true;
    c.ls_init_value = ls;
    c.act = act;
    c.norm_mlp_head = true;
    return c;
  };
  const double r = 8.0 / 3.0;
  const std::vector<int64_t> base{128, 256, 512, 768}, small{96, 192, 384, 576};
  const std::vector<std::pair<std::string, MambaOutConfig>> models = {
      {"mambaout_femto", {{3, 3, 9, 3}, {48, 96, 192, 288}}},
      {"mambaout_kobe", {{3, 3, 15, 3}, {48, 96, 192, 288}}},
      {"mambaout_tiny", {{3, 3, 9, 3}, small}},
      {"mambaout_small", {{3, 4, 27, 3}, small}},
      {"mambaout_base", {{3, 4, 27, 3}, base}},
      {"mambaout_small_rw", rw({3, 4, 27, 3}, small, r, 1.0, "gelu", 1e-6)},
      {"mambaout_base_short_rw", rw({3, 3, 25, 3}, base, 3.0, 1.25, "gelu", 1e-6)},
      {"mambaout_base_tall_rw", rw({3, 4, 30, 3}, base, 2.5, 1.25, "gelu", 1e-6)},
      {"mambaout_base_wide_rw", rw({3, 4, 27, 3}, base, 3.0, 1.5, "silu", 1e-6)},
      {"mambaout_base_plus_rw", rw({3, 4, 30, 3}, base, 3.0, 1.5, "silu", 1e-6)},
      {"test_mambaout", rw({1, 1, 3, 1}, {16, 32, 48, 64}, 3.0, 1.0, "silu", 1e-4)},
  };
  register_configs<MambaOutImpl>("mambaout", models);
}

}  // namespace mambaout
}  // namespace smp::timm
