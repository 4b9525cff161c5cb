// Hooks of the Vision Transformer family for its variants defined in other files: the hybrid models
// (vision_transformer_hybrid.cpp), whose patch embedding runs a CNN before the projection.
#pragma once

#include <smp/timm.h>
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace smp::timm::vision_transformer {

// timm's HybridEmbed backbone: registered as "patch_embed.backbone"; its output map (`channels`
// wide, `reduction` times smaller than the input) is what patch_embed.proj embeds.
struct HybridBackbone {
  std::shared_ptr<torch::nn::Module> module;
  std::function<torch::Tensor(const torch::Tensor&)> forward;
  int64_t channels = 0;
  int64_t reduction = 1;
  std::string first_conv;  // full-model name of its first conv, e.g. "patch_embed.backbone.stem.conv"
};

struct HybridConfig {
  int64_t patch_size = 1;  // of the projection on the backbone's map
  int64_t embed_dim = 768, depth = 12, num_heads = 12;
  int64_t img_size = 224;
  double mlp_ratio = 4.0;
  bool no_embed_class = false;
  bool proj = true;  // false: the backbone's map is the embedding (channels == embed_dim)
};

// A ViT on `backbone`'s feature map, with the standard block, class token and position embedding.
// `make_backbone` receives the model's creation arguments (in_chans).
Backbone create_hybrid(const std::string& name, const HybridConfig& config, const ModelArgs& args,
                       const std::function<HybridBackbone(const ModelArgs&)>& make_backbone);

}  // namespace smp::timm::vision_transformer
