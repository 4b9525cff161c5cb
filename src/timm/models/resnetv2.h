// timm's ResNetV2 (pre-activation ResNets, BiT) and its non-pre-activation form, which the ViT hybrid
// models use as their patch-embedding backbone.
#pragma once

#include <smp/timm.h>
#include <torch/torch.h>

#include <string>
#include <vector>

namespace smp::timm::resnetv2 {

struct ResNetV2Config {
  std::vector<int64_t> layers;
  std::vector<int64_t> channels = {256, 512, 1024, 2048};
  int64_t width_factor = 1;
  int64_t stem_chs = 64;
  // "", "fixed", "same", "deep", "deep_fixed", "deep_same" or "tiered".
  std::string stem_type;
  bool avg_down = false;  // average-pool shortcuts instead of strided 1x1 convs
  bool preact = true;     // false: post-activation bottlenecks (ViT hybrid backbones)
  bool basic = false;     // two 3x3 convs per block (preact only)
  double bottle_ratio = 0.25;
  std::string act = "relu";
  // "gn" (GroupNormAct, 32 groups), "bn" (BatchNormAct2d), "evos" (EvoNorm2dS0), "frn"
  // (FilterResponseNormTlu2d).
  std::string norm = "gn";
  // "conv" (plain, timm's create_conv2d), "std" (StdConv2d) or "std_same" (StdConv2dSame).
  std::string conv = "std";
  double std_conv_eps = 1e-8;
};

class ResNetV2Impl : public BackboneImpl {
 public:
  ResNetV2Impl(const std::string& name, const ResNetV2Config& cfg, const ModelArgs& args);

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override;
  torch::Tensor forward(const torch::Tensor& x) override;
  // Stem, stages and the final norm (timm's forward_features): what a ViT hybrid embeds.
  torch::Tensor forward_features(const torch::Tensor& x);
  int64_t num_features() const { return num_features_; }

  std::vector<std::string> flattened_children() const override { return {"stem", "stages"}; }
  std::string first_conv() const override;

 private:
  // Runs the stem; `feature` (when given) receives the stem feature.
  torch::Tensor run_stem(const torch::Tensor& x, torch::Tensor* feature);

  ResNetV2Config cfg_;
  std::vector<torch::nn::AnyModule> stem_steps_;  // stem convs and norms, in order
  size_t stem_feature_step_ = 0;                  // the step whose output is the stem feature
  std::string stem_pool_;                         // "fixed", "same" or "" (see ResNetV2Config)
  std::vector<torch::nn::Sequential> stages_;     // each stage's "blocks"
  torch::nn::AnyModule norm_;                     // preact only
  torch::nn::Conv2d fc_{nullptr};                 // timm's 1x1 conv classifier
  int64_t num_features_ = 0;
};
TORCH_MODULE(ResNetV2);

}  // namespace smp::timm::resnetv2
