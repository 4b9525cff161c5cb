// timm's hybrid Vision Transformers (vision_transformer_hybrid.py): a ViT whose patch embedding
// projects the feature map of a CNN (a ResNetV2, its stem alone, a features-only ResNet-D or a small
// conv stem) instead of the image.
#include <smp/timm.h>

#include <limits>

#include "timm/families.h"
#include "timm/layers/norm_act.h"
#include "timm/layers/std_conv.h"
#include "timm/models/resnetv2.h"
#include "timm/models/vision_transformer.h"

namespace smp::timm {

namespace vision_transformer_hybrid {
namespace {

namespace nn = torch::nn;
namespace F = torch::nn::functional;
using vision_transformer::HybridBackbone;
using vision_transformer::HybridConfig;

// The weight-standardised, 'SAME'-padded ResNetV2 of the R+ViT models (post-activation
// bottlenecks, GroupNorm), without head or final norm.
resnetv2::ResNetV2Config resnet_cfg(std::vector<int64_t> layers) {
  resnetv2::ResNetV2Config c;
  c.layers = std::move(layers);
  c.preact = false;
  c.stem_type = "same";
  c.conv = "std_same";
  c.std_conv_eps = 1e-8;
  return c;
}

std::function<HybridBackbone(const ModelArgs&)> resnetv2_backbone(std::vector<int64_t> layers) {
  return [layers](const ModelArgs& args) {
    auto net = std::make_shared<resnetv2::ResNetV2Impl>("resnetv2", resnet_cfg(layers),
                                                        ModelArgs().in_chans(args.in_chans()).num_classes(0));
    const auto& last = net->feature_info().back();
    return HybridBackbone{net, [net](const torch::Tensor& x) { return net->forward_features(x); }, last.num_chs,
                          last.reduction, "patch_embed.backbone.stem.conv"};
  };
}

// The ResNetV2 stem alone (timm's create_resnetv2_stem): 7x7 conv, GroupNorm + ReLU, 'SAME' max pool.
class StemImpl : public nn::Module {
 public:
  explicit StemImpl(int64_t in_chans) {
    conv_ = register_module("conv", layers::StdConv2d(layers::StdConv2dOptions(in_chans, 64, 7).stride(2).eps(1e-8).same(true)));
    norm_ = register_module("norm", layers::GroupNormAct(32, 64, "relu"));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = norm_(conv_(x));
    // TensorFlow 'SAME' 3x3/2 max pool: -inf padding, so the padding never wins the max.
    auto amount = [](int64_t size) { return std::max<int64_t>(((size + 1) / 2 - 1) * 2 + 3 - size, 0); };
    const int64_t ph = amount(y.size(-2)), pw = amount(y.size(-1));
    if (ph > 0 || pw > 0)
      y = F::pad(y, F::PadFuncOptions({pw / 2, pw - pw / 2, ph / 2, ph - ph / 2})
                        .value(-std::numeric_limits<double>::infinity()));
    return F::max_pool2d(y, F::MaxPool2dFuncOptions(3).stride(2));
  }

 private:
  layers::StdConv2d conv_{nullptr};
  layers::GroupNormAct norm_{nullptr};
};
TORCH_MODULE(Stem);

HybridBackbone stem_backbone(const ModelArgs& args) {
  auto stem = Stem(args.in_chans());
  return {stem.ptr(), [stem](const torch::Tensor& x) mutable { return stem(x); }, 64, 4, "patch_embed.backbone.conv"};
}

// A features-only model of another family (timm builds resnet26d/50d with features_only and one
// out index): its parameters keep the features model's names.
std::function<HybridBackbone(const ModelArgs&)> features_backbone(const std::string& model, int64_t out_index) {
  return [model, out_index](const ModelArgs& args) {
    auto features = create_features(model, ModelArgs().in_chans(args.in_chans()).out_indices({out_index}));
    const auto& info = features->feature_info().back();
    return HybridBackbone{features.ptr(),
                          [features](const torch::Tensor& x) mutable { return features->forward(x).back(); },
                          info.num_chs, info.reduction, "patch_embed.backbone.conv1.0"};
  };
}

// MobileCLIP's conv stem (timm's ConvStem): conv + BatchNorm + GELU twice, then a plain conv with
// bias, all unpadded with kernel = stride.
class ConvStemImpl : public nn::Module {
 public:
  explicit ConvStemImpl(int64_t in_chans) {
    const std::vector<int64_t> chs = {192, 192, 768}, ks = {4, 2, 2};
    for (size_t i = 0; i < chs.size(); ++i) {
      const bool last = i + 1 == chs.size();
      auto unit = register_module(std::to_string(i), std::make_shared<nn::Module>());
      convs_.push_back(unit->register_module(
          "conv", nn::Conv2d(nn::Conv2dOptions(in_chans, chs[i], ks[i]).stride(ks[i]).bias(last))));
      norms_.push_back(last ? nullptr : unit->register_module("bn", layers::BatchNormAct2d(chs[i], "gelu")));
      in_chans = chs[i];
    }
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = x;
    for (size_t i = 0; i < convs_.size(); ++i) {
      y = convs_[i](y);
      if (norms_[i]) y = norms_[i](y);
    }
    return y;
  }

 private:
  std::vector<nn::Conv2d> convs_;
  std::vector<layers::BatchNormAct2d> norms_;
};
TORCH_MODULE(ConvStem);

HybridBackbone conv_stem_backbone(const ModelArgs& args) {
  auto stem = ConvStem(args.in_chans());
  return {stem.ptr(), [stem](const torch::Tensor& x) mutable { return stem(x); }, 768, 16, "patch_embed.backbone.0.conv"};
}

struct HybridModel {
  HybridConfig cfg;
  std::function<HybridBackbone(const ModelArgs&)> backbone;
  std::vector<double> mean = {0.5, 0.5, 0.5}, std = {0.5, 0.5, 0.5};
  int64_t num_classes = 1000;
};

HybridConfig vit(int64_t patch, int64_t dim, int64_t depth, int64_t heads, int64_t img = 224, double mlp = 4.0) {
  HybridConfig c;
  c.patch_size = patch;
  c.embed_dim = dim;
  c.depth = depth;
  c.num_heads = heads;
  c.img_size = img;
  c.mlp_ratio = mlp;
  return c;
}

}  // namespace

void register_family() {
  const std::vector<double> imagenet_mean = {0.485, 0.456, 0.406}, imagenet_std = {0.229, 0.224, 0.225};
  auto mci = vit(1, 768, 12, 12);
  mci.no_embed_class = true;
  mci.proj = false;
  const std::vector<std::pair<std::string, HybridModel>> models = {
      {"vit_tiny_r_s16_p8_224", {vit(8, 192, 12, 3), stem_backbone}},
      {"vit_tiny_r_s16_p8_384", {vit(8, 192, 12, 3, 384), stem_backbone}},
      {"vit_small_r26_s32_224", {vit(1, 384, 12, 6), resnetv2_backbone({2, 2, 2, 2})}},
      {"vit_small_r26_s32_384", {vit(1, 384, 12, 6, 384), resnetv2_backbone({2, 2, 2, 2})}},
      {"vit_base_r26_s32_224", {vit(1, 768, 12, 12), resnetv2_backbone({2, 2, 2, 2})}},
      {"vit_base_r50_s16_224", {vit(1, 768, 12, 12), resnetv2_backbone({3, 4, 9}), {0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}, 0}},
      {"vit_base_r50_s16_384", {vit(1, 768, 12, 12, 384), resnetv2_backbone({3, 4, 9})}},
      {"vit_large_r50_s32_224", {vit(1, 1024, 24, 16), resnetv2_backbone({3, 4, 6, 3})}},
      {"vit_large_r50_s32_384", {vit(1, 1024, 24, 16, 384), resnetv2_backbone({3, 4, 6, 3})}},
      {"vit_small_resnet26d_224", {vit(1, 768, 8, 8, 224, 3.0), features_backbone("resnet26d", 4), imagenet_mean, imagenet_std}},
      {"vit_small_resnet50d_s16_224", {vit(1, 768, 8, 8, 224, 3.0), features_backbone("resnet50d", 3), imagenet_mean, imagenet_std}},
      {"vit_base_resnet26d_224", {vit(1, 768, 12, 12), features_backbone("resnet26d", 4), imagenet_mean, imagenet_std}},
      {"vit_base_resnet50d_224", {vit(1, 768, 12, 12), features_backbone("resnet50d", 4), imagenet_mean, imagenet_std}},
      {"vit_base_mci_224", {mci, conv_stem_backbone, {0.0, 0.0, 0.0}, {1.0, 1.0, 1.0}, 512}},
  };
  for (const auto& [name, m] : models) {
    ModelEntry e;
    e.name = name;
    e.family = "vision_transformer_hybrid";
    e.mean = m.mean;
    e.std = m.std;
    e.num_classes = m.num_classes;
    e.create = [name = name, m = m](const ModelArgs& args) {
      return vision_transformer::create_hybrid(name, m.cfg, args, m.backbone);
    };
    register_model(std::move(e));
  }
}

}  // namespace vision_transformer_hybrid
}  // namespace smp::timm
