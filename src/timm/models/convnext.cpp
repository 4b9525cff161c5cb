// ConvNeXt and ConvNeXt-V2, as timm's convnext.py builds them.
#include <smp/timm.h>

#include <optional>

#include "timm/families.h"
#include "timm/layers/activations.h"
#include "timm/layers/conv2d_same.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/grn.h"
#include "timm/layers/helpers.h"
#include "timm/layers/mlp.h"
#include "timm/layers/norm.h"

namespace smp::timm {

namespace convnext {
namespace {

namespace nn = torch::nn;

enum class NormKind { kLayerNorm, kRmsNorm, kSimpleNorm };
// Patch: one kernel-4 stride-4 conv. Overlap: two 3x3 stride-2 convs (tiered: the first one half
// as wide; act: an activation between them).
enum class StemType { kPatch, kOverlap, kOverlapTiered, kOverlapAct };

struct ConvNeXtConfig {
  std::vector<int64_t> depths, dims;
  std::vector<int64_t> kernel_sizes = {7, 7, 7, 7};
  std::optional<double> ls_init_value = 1e-6;  // layer scale ("gamma"); none in ConvNeXt-V2
  StemType stem = StemType::kPatch;
  bool head_norm_first = false;  // norm -> pool -> fc instead of pool -> norm -> fc
  int64_t head_hidden_size = 0;  // > 0: a hidden Linear + GELU before the classifier
  bool conv_mlp = false;         // 1x1 convs over NCHW instead of Linear layers over NHWC
  bool use_grn = false;          // ConvNeXt-V2's GlobalResponseNorm in the MLP
  std::string act = "gelu";
  NormKind norm = NormKind::kLayerNorm;
  double norm_eps = 1e-6;

  ConvNeXtConfig& conv() {
    conv_mlp = true;
    return *this;
  }
  ConvNeXtConfig& v2() {
    use_grn = true;
    ls_init_value.reset();
    return *this;
  }
  ConvNeXtConfig& with_stem(StemType type) {
    stem = type;
    return *this;
  }
  ConvNeXtConfig& with_norm(NormKind kind, double eps = 1e-6) {
    norm = kind;
    norm_eps = eps;
    return *this;
  }
};

ConvNeXtConfig make_config(std::vector<int64_t> depths, std::vector<int64_t> dims) {
  ConvNeXtConfig c;
  c.depths = std::move(depths);
  c.dims = std::move(dims);
  return c;
}

// The configured norm over NCHW (stem, downsampling, head and conv-MLP blocks) or NHWC input.
nn::AnyModule make_norm(const ConvNeXtConfig& cfg, int64_t channels, bool nchw) {
  switch (cfg.norm) {
    case NormKind::kRmsNorm:
      return nn::AnyModule(layers::RmsNorm(channels, cfg.norm_eps, nchw));
    case NormKind::kSimpleNorm:
      return nn::AnyModule(layers::SimpleNorm(channels, cfg.norm_eps, nchw));
    case NormKind::kLayerNorm:
      break;
  }
  if (nchw) return nn::AnyModule(layers::LayerNorm2d(channels, cfg.norm_eps));
  return nn::AnyModule(nn::LayerNorm(nn::LayerNormOptions({channels}).eps(cfg.norm_eps)));
}

// Depthwise conv -> norm -> MLP -> layer scale, plus the identity shortcut.
class ConvNeXtBlockImpl : public nn::Module {
 public:
  ConvNeXtBlockImpl(int64_t dim, int64_t kernel, int64_t dilation, const ConvNeXtConfig& cfg, double drop_path_rate)
      : conv_mlp_(cfg.conv_mlp), drop_path_rate_(drop_path_rate) {
    conv_dw_ = register_module("conv_dw", nn::Conv2d(nn::Conv2dOptions(dim, dim, kernel)
                                                         .padding(layers::get_padding(kernel, 1, dilation))
                                                         .dilation(dilation)
                                                         .groups(dim)));
    norm_ = make_norm(cfg, dim, cfg.conv_mlp);
    register_module("norm", norm_.ptr());
    const auto mlp_options = layers::MlpOptions(dim, 4 * dim).act(cfg.act).use_conv(cfg.conv_mlp);
    mlp_ = cfg.use_grn ? nn::AnyModule(layers::GlobalResponseNormMlp(mlp_options))
                       : nn::AnyModule(layers::Mlp(mlp_options));
    register_module("mlp", mlp_.ptr());
    if (cfg.ls_init_value) gamma_ = register_parameter("gamma", torch::full({dim}, *cfg.ls_init_value));
  }

  torch::Tensor forward(const torch::Tensor& x) {
    auto y = conv_dw_(x);
    if (conv_mlp_) {
      y = mlp_.forward(norm_.forward(y));
    } else {
      y = mlp_.forward(norm_.forward(y.permute({0, 2, 3, 1}))).permute({0, 3, 1, 2});
    }
    if (gamma_.defined()) y = y.mul(gamma_.reshape({1, -1, 1, 1}));
    return layers::drop_path(y, drop_path_rate_, is_training()) + x;
  }

 private:
  bool conv_mlp_;
  double drop_path_rate_;
  nn::Conv2d conv_dw_{nullptr};
  nn::AnyModule norm_, mlp_;
  torch::Tensor gamma_;
};
TORCH_MODULE(ConvNeXtBlock);

// Optional downsampling (norm + strided or dilated conv) followed by the blocks. `dilation` is
// (the downsampling conv's, the blocks'); one stochastic depth rate per block.
class ConvNeXtStageImpl : public nn::Module {
 public:
  ConvNeXtStageImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, std::pair<int64_t, int64_t> dilation,
                    const std::vector<double>& drop_path_rates, const ConvNeXtConfig& cfg) {
    const bool changes_dilation = dilation.first != dilation.second;
    if (in != out || stride > 1 || changes_dilation) {
      const int64_t ds_kernel = stride > 1 || changes_dilation ? 2 : 1;
      auto conv_options = nn::Conv2dOptions(in, out, ds_kernel).stride(stride).dilation(dilation.first);
      downsample_ = nn::Sequential();
      downsample_->push_back(make_norm(cfg, in, true));
      // A dilated stage keeps the resolution: its 2x2 conv needs 'same' padding.
      if (dilation.second > 1)
        downsample_->push_back(layers::create_conv2d_same(conv_options));
      else
        downsample_->push_back(nn::Conv2d(conv_options));
      register_module("downsample", downsample_);
    }
    blocks_ = register_module("blocks", nn::Sequential());
    for (const double rate : drop_path_rates)
      blocks_->push_back(ConvNeXtBlock(out, kernel, dilation.second, cfg, rate));
  }

  torch::Tensor forward(const torch::Tensor& x) { return blocks_->forward(downsample_ ? downsample_->forward(x) : x); }

 private:
  nn::Sequential downsample_{nullptr}, blocks_{nullptr};
};
TORCH_MODULE(ConvNeXtStage);

// timm's NormMlpClassifierHead (pool -> norm -> [Linear + GELU] -> dropout -> fc) or, when the model
// applies its norm before pooling, ClassifierHead (pool -> dropout -> fc). It holds the layers; the
// backbone's classify() applies the dropout and `fc`.
class ConvNeXtHeadImpl : public nn::Module {
 public:
  ConvNeXtHeadImpl(int64_t in, int64_t num_classes, const ConvNeXtConfig& cfg) {
    int64_t width = in;
    if (!cfg.head_norm_first) {
      norm_ = make_norm(cfg, in, true);
      register_module("norm", norm_.ptr());
      if (cfg.head_hidden_size > 0) {
        pre_logits_ = register_module("pre_logits", nn::Sequential());
        pre_logits_->push_back("fc", nn::Linear(in, cfg.head_hidden_size));
        pre_logits_->push_back("act", nn::Functional(layers::get_act("gelu")));
        width = cfg.head_hidden_size;
      }
    }
    if (num_classes > 0) fc = register_module("fc", nn::Linear(width, num_classes));
  }

  // The features `fc` classifies: pooled, then normalised and projected where the head does so.
  torch::Tensor pre_logits(const torch::Tensor& x) {
    auto y = x.mean({2, 3}, /*keepdim=*/true);
    if (!norm_.is_empty()) y = norm_.forward(y);
    y = y.flatten(1);
    return pre_logits_ ? pre_logits_->forward(y) : y;
  }

  nn::Linear fc{nullptr};  // none when the model has num_classes 0

 private:
  nn::AnyModule norm_;
  nn::Sequential pre_logits_{nullptr};
};
TORCH_MODULE(ConvNeXtHead);

constexpr int64_t kNumStages = 4;

class ConvNeXtImpl : public BackboneImpl {
 public:
  ConvNeXtImpl(const std::string& name, const ConvNeXtConfig& cfg, const ModelArgs& args)
      : BackboneImpl(name, args) {
    // features_only builds the stages up to the last requested feature, like timm's FeatureListNet.
    const int64_t num_built = layers::last_feature_index(args, kNumStages, name) + 1;

    const auto& dims = cfg.dims;
    stem_ = register_module("stem", nn::Sequential());
    if (cfg.stem == StemType::kPatch) {
      stem_->push_back(nn::Conv2d(nn::Conv2dOptions(args.in_chans(), dims[0], 4).stride(4)));
    } else {
      const int64_t mid = cfg.stem == StemType::kOverlapTiered ? layers::make_divisible(dims[0] / 2) : dims[0];
      stem_->push_back(nn::Conv2d(nn::Conv2dOptions(args.in_chans(), mid, 3).stride(2).padding(1)));
      if (cfg.stem == StemType::kOverlapAct) stem_->push_back(nn::Functional(layers::get_act(cfg.act)));
      stem_->push_back(nn::Conv2d(nn::Conv2dOptions(mid, dims[0], 3).stride(2).padding(1)));
    }
    stem_->push_back(make_norm(cfg, dims[0], true));

    // Stages, with timm's stride/dilation bookkeeping for output_stride 8 and 16.
    stages_ = register_module("stages", nn::Sequential());
    int64_t curr_stride = 4, dilation = 1, prev = dims[0];
    const auto drop_path_rates = layers::drop_path_rates(args.drop_path_rate(), cfg.depths);
    for (int64_t i = 0; i < kNumStages; ++i) {
      int64_t stride = i > 0 ? 2 : 1;
      if (curr_stride >= args.output_stride() && stride > 1) {
        dilation *= stride;
        stride = 1;
      }
      curr_stride *= stride;
      const int64_t first_dilation = dilation <= 2 ? 1 : 2;
      const auto si = static_cast<size_t>(i);
      feature_info_.push_back({"stages." + std::to_string(i), dims[si], curr_stride});
      if (i < num_built)
        stages_->push_back(ConvNeXtStage(prev, dims[si], cfg.kernel_sizes[si], stride,
                                         std::make_pair(first_dilation, dilation), drop_path_rates[si], cfg));
      prev = dims[si];
    }

    if (!args.features_only()) {
      if (cfg.head_norm_first) {
        norm_pre_ = make_norm(cfg, prev, true);
        register_module("norm_pre", norm_pre_.ptr());
      }
      head_ = register_module("head", ConvNeXtHead(prev, args.num_classes(), cfg));
    }
  }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    const auto built = static_cast<int64_t>(stages_->size());
    layers::check_feature_indices(indices, built, model_name());
    std::vector<torch::Tensor> out;
    if (indices.empty()) return out;
    auto y = stem_->forward(x);
    for (int64_t i = 0; out.size() < indices.size(); ++i) {
      y = stages_->at<ConvNeXtStageImpl>(static_cast<size_t>(i)).forward(y);
      if (i == indices[out.size()]) out.push_back(y);
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    auto y = stages_->forward(stem_->forward(x));
    if (!norm_pre_.is_empty()) y = norm_pre_.forward(y);
    return classify(head_->pre_logits(y), head_->fc);
  }

  std::vector<std::string> flattened_children() const override { return {"stem", "stages"}; }
  std::string first_conv() const override { return "stem.0"; }

 private:
  nn::Sequential stem_{nullptr}, stages_{nullptr};
  nn::AnyModule norm_pre_;
  ConvNeXtHead head_{nullptr};
};

}  // namespace

void register_family() {
  using S = StemType;
  using N = NormKind;
  const std::vector<int64_t> d2262{2, 2, 6, 2}, d2282{2, 2, 8, 2}, d3393{3, 3, 9, 3}, d33273{3, 3, 27, 3};
  const std::vector<int64_t> atto{40, 80, 160, 320}, femto{48, 96, 192, 384}, pico{64, 128, 256, 512},
      nano{80, 160, 320, 640}, tiny{96, 192, 384, 768}, base{128, 256, 512, 1024}, large{192, 384, 768, 1536};

  auto hnf = make_config(d3393, tiny).conv();
  hnf.head_norm_first = true;
  auto large_mlp = make_config(d33273, large);
  large_mlp.head_hidden_size = 1536;
  auto test3 = make_config({1, 1, 1, 1}, {32, 64, 96, 128}).with_norm(N::kLayerNorm, 1e-5);
  test3.kernel_sizes = {7, 5, 5, 3};
  test3.act = "silu";
  auto test1 = make_config({1, 2, 4, 2}, {24, 32, 48, 64}).with_norm(N::kLayerNorm, 1e-5);
  test1.act = "gelu_tanh";
  auto test2 = make_config({1, 1, 1, 1}, {32, 64, 96, 128}).with_norm(N::kLayerNorm, 1e-5);
  test2.act = "gelu_tanh";

  const std::vector<std::pair<std::string, ConvNeXtConfig>> models = {
      {"convnext_zepto_rms", make_config({2, 2, 4, 2}, {32, 64, 128, 256}).conv().with_norm(N::kSimpleNorm)},
      {"convnext_zepto_rms_ols",
       make_config({2, 2, 4, 2}, {32, 64, 128, 256}).conv().with_norm(N::kSimpleNorm).with_stem(S::kOverlapAct)},
      {"convnext_atto", make_config(d2262, atto).conv()},
      {"convnext_atto_ols", make_config(d2262, atto).conv().with_stem(S::kOverlapTiered)},
      {"convnext_atto_rms", make_config(d2262, atto).conv().with_norm(N::kRmsNorm)},
      {"convnext_femto", make_config(d2262, femto).conv()},
      {"convnext_femto_ols", make_config(d2262, femto).conv().with_stem(S::kOverlapTiered)},
      {"convnext_pico", make_config(d2262, pico).conv()},
      {"convnext_pico_ols", make_config(d2262, pico).conv().with_stem(S::kOverlapTiered)},
      {"convnext_nano", make_config(d2282, nano).conv()},
      {"convnext_nano_ols", make_config(d2282, nano).conv().with_stem(S::kOverlap)},
      {"convnext_tiny_hnf", hnf},
      {"convnext_tiny", make_config(d3393, tiny)},
      {"convnext_small", make_config(d33273, tiny)},
      {"convnext_base", make_config(d33273, base)},
      {"convnext_large", make_config(d33273, large)},
      {"convnext_large_mlp", large_mlp},
      {"convnext_xlarge", make_config(d33273, {256, 512, 1024, 2048})},
      {"convnext_xxlarge", make_config({3, 4, 30, 3}, {384, 768, 1536, 3072}).with_norm(N::kLayerNorm, 1e-5)},
      {"convnextv2_atto", make_config(d2262, atto).conv().v2()},
      {"convnextv2_femto", make_config(d2262, femto).conv().v2()},
      {"convnextv2_pico", make_config(d2262, pico).conv().v2()},
      {"convnextv2_nano", make_config(d2282, nano).conv().v2()},
      {"convnextv2_tiny", make_config(d3393, tiny).v2()},
      {"convnextv2_small", make_config(d33273, tiny).v2()},
      {"convnextv2_base", make_config(d33273, base).v2()},
      {"convnextv2_large", make_config(d33273, large).v2()},
      {"convnextv2_huge", make_config(d33273, {352, 704, 1408, 2816}).v2()},
      {"test_convnext", test1},
      {"test_convnext2", test2},
      {"test_convnext3", test3},
  };

  const std::vector<double> half = {0.5, 0.5, 0.5};
  const std::vector<double> clip_mean = {0.48145466, 0.4578275, 0.40821073},
                            clip_std = {0.26862954, 0.26130258, 0.27577711};
  for (const auto& [name, cfg] : models) {
    ModelEntry entry;
    entry.name = name;
    entry.family = "convnext";
    entry.create = [name = name, cfg = cfg](const ModelArgs& args) -> Backbone {
      return std::make_shared<ConvNeXtImpl>(name, cfg, args);
    };
    // Preprocessing of each model's default pretrained weights.
    if (name == "convnext_large_mlp" || name == "convnext_xxlarge") {
      entry.mean = clip_mean;
      entry.std = clip_std;
    } else if (name.rfind("convnext_zepto", 0) == 0 || name.rfind("test_", 0) == 0) {
      entry.mean = entry.std = half;
    }
    register_model(std::move(entry));
  }
}

}  // namespace convnext
}  // namespace smp::timm
