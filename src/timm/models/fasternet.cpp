// timm's FasterNet: partial 3x3 convolutions (on a quarter of the channels) followed by 1x1 MLPs.
#include <smp/timm.h>

#include "timm/families.h"
#include "timm/layers/activations.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"

namespace smp::timm {

namespace fasternet {
namespace {

namespace nn = torch::nn;

nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride = 1, int64_t padding = 0) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, k).stride(stride).padding(padding).bias(false));
}

// A conv followed by BatchNorm2d, under the given child names (patch embed / merging).
class ConvNormImpl : public nn::Module {
 public:
  ConvNormImpl(const std::string& conv_name, int64_t in, int64_t out, int64_t patch) {
    conv_ = register_module(conv_name, conv(in, out, patch, patch));
    norm_ = register_module("norm", nn::BatchNorm2d(out));
  }
  torch::Tensor forward(const torch::Tensor& x) { return norm_(conv_(x)); }

 private:
  nn::Conv2d conv_{nullptr};
  nn::BatchNorm2d norm_{nullptr};
};
TORCH_MODULE(ConvNorm);

class MlpBlockImpl : public nn::Module {
 public:
  MlpBlockImpl(int64_t dim, int64_t n_div, double mlp_ratio, const std::string& act, double drop_path)
      : dim_conv3_(dim / n_div), drop_path_(drop_path) {
    const auto hidden = static_cast<int64_t>(static_cast<double>(dim) * mlp_ratio);
    mlp_ = register_module("mlp", nn::Sequential());
    mlp_->push_back(conv(dim, hidden, 1));
    mlp_->push_back(nn::BatchNorm2d(hidden));
    if (act == "gelu")
      mlp_->push_back(nn::GELU());
    else
      mlp_->push_back(nn::ReLU());
    mlp_->push_back(conv(hidden, dim, 1));
    auto mixing = register_module("spatial_mixing", std::make_shared<nn::Module>());
    partial_conv3_ = mixing->register_module("partial_conv3", conv(dim_conv3_, dim_conv3_, 3, 1, 1));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    // Only the first dim / n_div channels see the 3x3 conv; the rest pass through untouched.
    auto mixed = torch::cat({partial_conv3_(x.narrow(1, 0, dim_conv3_)), x.narrow(1, dim_conv3_, x.size(1) - dim_conv3_)}, 1);
    return x + layers::drop_path(mlp_->forward(mixed), drop_path_, is_training());
  }

 private:
  int64_t dim_conv3_;
  double drop_path_;
  nn::Sequential mlp_{nullptr};
  nn::Conv2d partial_conv3_{nullptr};
};
TORCH_MODULE(MlpBlock);

class StageImpl : public nn::Module {
 public:
  StageImpl(int64_t dim, int64_t depth, bool merge, const std::string& act, const std::vector<double>& dpr) {
    blocks_ = register_module("blocks", nn::Sequential());
    for (int64_t i = 0; i < depth; ++i) blocks_->push_back(MlpBlock(dim, 4, 2.0, act, dpr[static_cast<size_t>(i)]));
    if (merge) downsample_ = register_module("downsample", ConvNorm("reduction", dim / 2, dim, 2));
  }
  torch::Tensor forward(const torch::Tensor& x) { return blocks_->forward(downsample_ ? downsample_(x) : x); }

 private:
  nn::Sequential blocks_{nullptr};
  ConvNorm downsample_{nullptr};
};
TORCH_MODULE(Stage);

struct FasterCfg {
  int64_t embed_dim = 96;
  std::vector<int64_t> depths{1, 2, 8, 2};
  std::string act = "relu";
};

class FasterNetImpl : public BackboneImpl {
 public:
  FasterNetImpl(const std::string& name, const FasterCfg& c, const ModelArgs& args)
      : BackboneImpl(name, args), act_(layers::get_act(c.act)) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " supports output_stride 32 only (got " +
                                  std::to_string(args.output_stride()) + ")");
    for (int64_t i = 0; i < 4; ++i)
      feature_info_.push_back({"stages." + std::to_string(i), c.embed_dim << i, int64_t{4} << i});
    const auto last = layers::last_feature_index(args, 4, name);
    patch_embed_ = register_module("patch_embed", ConvNorm("proj", args.in_chans(), c.embed_dim, 4));
    const auto dpr = layers::drop_path_rates(args.drop_path_rate(), c.depths);
    stages_ = register_module("stages", nn::Sequential());
    for (int64_t i = 0; i <= last; ++i)
      stages_->push_back(Stage(c.embed_dim << i, c.depths[static_cast<size_t>(i)], i > 0, c.act, dpr[static_cast<size_t>(i)]));
    if (!args.features_only()) {
      const int64_t feature_dim = 1280;
      conv_head_ = register_module("conv_head", conv(c.embed_dim << 3, feature_dim, 1));
      if (args.num_classes() > 0) classifier_ = register_module("classifier", nn::Linear(feature_dim, args.num_classes()));
    }
  }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    layers::check_feature_indices(indices, static_cast<int64_t>(stages_->size()), model_name());
    std::vector<torch::Tensor> out;
    if (indices.empty()) return out;
    auto y = patch_embed_(x);
    for (int64_t i = 0; out.size() < indices.size(); ++i) {
      y = stages_[static_cast<size_t>(i)]->as<Stage>()->forward(y);
      if (i == indices[out.size()]) out.push_back(y);
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    auto y = stages_->forward(patch_embed_(x)).mean({2, 3}, /*keepdim=*/true);
    return classify(act_(conv_head_(y)).flatten(1), classifier_);
  }

  std::vector<std::string> flattened_children() const override { return {"stages"}; }
  std::string first_conv() const override { return "patch_embed.proj"; }

 private:
  layers::ActFn act_;
  ConvNorm patch_embed_{nullptr};
  nn::Sequential stages_{nullptr};
  nn::Conv2d conv_head_{nullptr};
  nn::Linear classifier_{nullptr};
};

}  // namespace

void register_family() {
  const std::vector<std::pair<std::string, FasterCfg>> models = {
      {"fasternet_t0", {40, {1, 2, 8, 2}, "gelu"}}, {"fasternet_t1", {64, {1, 2, 8, 2}, "gelu"}},
      {"fasternet_t2", {96, {1, 2, 8, 2}, "relu"}}, {"fasternet_s", {128, {1, 2, 13, 2}, "relu"}},
      {"fasternet_m", {144, {3, 4, 18, 3}, "relu"}}, {"fasternet_l", {192, {3, 4, 18, 3}, "relu"}},
  };
  register_configs<FasterNetImpl>("fasternet", models);
}

}  // namespace fasternet
}  // namespace smp::timm
