// timm's VoVNet (V1 and V2 / ESE-VoVNet): one-shot aggregation (OSA) blocks.
#include <smp/timm.h>

#include "timm/families.h"
#include "timm/layers/attention_modules.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/evo_norm.h"
#include "timm/layers/helpers.h"
#include "timm/layers/norm_act.h"

namespace smp::timm {

namespace vovnet {
namespace {

namespace nn = torch::nn;

struct VovCfg {
  std::vector<int64_t> stem_chs, stage_conv_chs, stage_out_chs, block_per_stage;
  int64_t layer_per_block = 5;
  bool residual = false, depthwise = false;
  std::string attn;  // "", "ese" or "eca"
  bool evonorm = false;
};

// The norm + activation after each conv: BatchNorm2d + ReLU, or EvoNorm-S0 for the "_evos" model.
nn::AnyModule norm_act(int64_t channels, bool evonorm) {
  if (evonorm) return nn::AnyModule(layers::EvoNorm2dS0(channels));
  return layers::create_norm_act(channels, "relu");
}

nn::Conv2d conv2d(int64_t in, int64_t out, int64_t k, int64_t stride = 1, int64_t groups = 1) {
  return nn::Conv2d(
      nn::Conv2dOptions(in, out, k).stride(stride).padding(((stride - 1) + (k - 1)) / 2).groups(groups).bias(false));
}

// ConvNormAct ("conv", "bn") or SeparableConvNormAct ("conv_dw", "conv_pw", "bn"), with a choice of norm
// that the shared ConvNormAct does not offer.
class ConvBnImpl : public nn::Module {
 public:
  ConvBnImpl(int64_t in, int64_t out, int64_t k, int64_t stride, bool separable, bool evonorm) {
    if (separable) {
      dw_ = register_module("conv_dw", conv2d(in, in, k, stride, in));
      conv_ = register_module("conv_pw", conv2d(in, out, 1));
    } else {
      conv_ = register_module("conv", conv2d(in, out, k, stride));
    }
    bn_ = norm_act(out, evonorm);
    register_module("bn", bn_.ptr());
  }
  torch::Tensor forward(const torch::Tensor& x) { return bn_.forward(conv_(dw_ ? dw_(x) : x)); }

 private:
  nn::Conv2d dw_{nullptr}, conv_{nullptr};
  nn::AnyModule bn_;
};
TORCH_MODULE(ConvBn);

class OsaBlockImpl : public nn::Module {
 public:
  OsaBlockImpl(int64_t in, int64_t mid, int64_t out, const VovCfg& c, bool residual, const std::string& attn,
               double drop_path)
      : residual_(residual), drop_path_(drop_path) {
    int64_t next_in = in;
    if (c.depthwise && in != mid) conv_reduction_ = register_module("conv_reduction", ConvBn(in, mid, 1, 1, false, c.evonorm));
    conv_mid_ = register_module("conv_mid", nn::ModuleList());
    for (int64_t i = 0; i < c.layer_per_block; ++i) {
      conv_mid_->push_back(c.depthwise ? ConvBn(mid, mid, 3, 1, true, c.evonorm) : ConvBn(next_in, mid, 3, 1, false, c.evonorm));
      next_in = mid;
    }
    conv_concat_ = register_module("conv_concat", ConvBn(in + c.layer_per_block * mid, out, 1, 1, false, c.evonorm));
    if (!attn.empty()) {
      attn_ = layers::create_attn(attn, out);
      register_module("attn", attn_.ptr());
    }
  }
  torch::Tensor forward(const torch::Tensor& x) {
    std::vector<torch::Tensor> outs{x};
    auto y = conv_reduction_ ? conv_reduction_(x) : x;
    for (const auto& m : *conv_mid_) {
      y = m->as<ConvBn>()->forward(y);
      outs.push_back(y);
    }
    y = conv_concat_(torch::cat(outs, 1));
    if (!attn_.is_empty()) y = attn_.forward(y);
    y = layers::drop_path(y, drop_path_, is_training());
    return residual_ ? y + x : y;
  }

 private:
  bool residual_;
  double drop_path_;
  ConvBn conv_reduction_{nullptr}, conv_concat_{nullptr};
  nn::ModuleList conv_mid_{nullptr};
  nn::AnyModule attn_;
};
TORCH_MODULE(OsaBlock);

class OsaStageImpl : public nn::Module {
 public:
  OsaStageImpl(int64_t in, int64_t mid, int64_t out, int64_t blocks, bool downsample, const VovCfg& c,
               const std::vector<double>& dpr)
      : downsample_(downsample) {
    blocks_ = register_module("blocks", nn::Sequential());
    for (int64_t i = 0; i < blocks; ++i) {
      const bool last = i == blocks - 1;
      blocks_->push_back(OsaBlock(in, mid, out, c, c.residual && i > 0, last ? c.attn : "", dpr[static_cast<size_t>(i)]));
      in = out;
    }
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return blocks_->forward(downsample_ ? torch::max_pool2d(x, 3, 2, 0, 1, /*ceil_mode=*/true) : x);
  }

 private:
  bool downsample_;
  nn::Sequential blocks_{nullptr};
};
TORCH_MODULE(OsaStage);

class VovNetImpl : public BackboneImpl {
 public:
  VovNetImpl(const std::string& name, const VovCfg& c, const ModelArgs& args) : BackboneImpl(name, args) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " supports output_stride 32 only (got " +
                                  std::to_string(args.output_stride()) + ")");
    const auto& s = c.stem_chs;
    stem_ = register_module("stem", nn::Sequential());
    stem_->push_back(ConvBn(args.in_chans(), s[0], 3, 2, false, c.evonorm));
    stem_->push_back(ConvBn(s[0], s[1], 3, 1, c.depthwise, c.evonorm));
    stem_->push_back(ConvBn(s[1], s[2], 3, 2, c.depthwise, c.evonorm));
    feature_info_.push_back({"stem.1", s[1], 2});
    int64_t reduction = 4;
    for (int64_t i = 0; i < 4; ++i) {
      if (i > 0) reduction *= 2;
      feature_info_.push_back({"stages." + std::to_string(i), c.stage_out_chs[static_cast<size_t>(i)], reduction});
    }
    const auto num_stages = layers::last_feature_index(args, 5, name);
    const auto dpr = layers::drop_path_rates(args.drop_path_rate(), c.block_per_stage);
    stages_ = register_module("stages", nn::Sequential());
    int64_t prev = s[2];
    for (int64_t i = 0; i < num_stages; ++i) {
      const auto u = static_cast<size_t>(i);
      stages_->push_back(OsaStage(prev, c.stage_conv_chs[u], c.stage_out_chs[u], c.block_per_stage[u], i > 0, c, dpr[u]));
      prev = c.stage_out_chs[u];
    }
    if (!args.features_only() && args.num_classes() > 0) {
      auto head = register_module("head", std::make_shared<nn::Module>());
      fc_ = head->register_module("fc", nn::Linear(c.stage_out_chs.back(), args.num_classes()));
    }
  }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    layers::check_feature_indices(indices, static_cast<int64_t>(stages_->size()) + 1, model_name());
    std::vector<torch::Tensor> out;
    if (indices.empty()) return out;
    auto y = stem_[1]->as<ConvBn>()->forward(stem_[0]->as<ConvBn>()->forward(x));
    if (indices.front() == 0) out.push_back(y);
    if (out.size() == indices.size()) return out;
    y = stem_[2]->as<ConvBn>()->forward(y);
    for (int64_t i = 1; out.size() < indices.size(); ++i) {
      y = stages_[static_cast<size_t>(i - 1)]->as<OsaStage>()->forward(y);
      if (i == indices[out.size()]) out.push_back(y);
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    return pool_and_classify(stages_->forward(stem_->forward(x)), fc_);
  }

  std::vector<std::string> flattened_children() const override { return {"stem", "stages"}; }
  std::string first_conv() const override { return "stem.0.conv"; }

 private:
  nn::Sequential stem_{nullptr}, stages_{nullptr};
  nn::Linear fc_{nullptr};
};

VovCfg cfg(std::vector<int64_t> stem, bool slim, int64_t layers_per_block, std::vector<int64_t> blocks, bool residual,
           bool depthwise, std::string attn) {
  VovCfg c;
  c.stem_chs = std::move(stem);
  c.stage_conv_chs = slim ? std::vector<int64_t>{64, 80, 96, 112} : std::vector<int64_t>{128, 160, 192, 224};
  c.stage_out_chs = slim ? std::vector<int64_t>{112, 256, 384, 512} : std::vector<int64_t>{256, 512, 768, 1024};
  c.layer_per_block = layers_per_block;
  c.block_per_stage = std::move(blocks);
  c.residual = residual;
  c.depthwise = depthwise;
  c.attn = std::move(attn);
  return c;
}

}  // namespace

void register_family() {
  const std::vector<int64_t> wide{64, 64, 128}, narrow{64, 64, 64};
  auto evos = cfg(wide, false, 5, {1, 1, 2, 2}, true, false, "ese");
  evos.evonorm = true;
  const std::vector<std::pair<std::string, VovCfg>> models = {
      {"vovnet39a", cfg(wide, false, 5, {1, 1, 2, 2}, false, false, "")},
      {"vovnet57a", cfg(wide, false, 5, {1, 1, 4, 3}, false, false, "")},
      {"ese_vovnet19b_slim_dw", cfg(narrow, true, 3, {1, 1, 1, 1}, true, true, "ese")},
      {"ese_vovnet19b_dw", cfg(narrow, false, 3, {1, 1, 1, 1}, true, true, "ese")},
      {"ese_vovnet19b_slim", cfg(wide, true, 3, {1, 1, 1, 1}, true, false, "ese")},
      {"ese_vovnet19b", cfg(wide, false, 3, {1, 1, 1, 1}, true, false, "ese")},
      {"ese_vovnet39b", cfg(wide, false, 5, {1, 1, 2, 2}, true, false, "ese")},
      {"ese_vovnet57b", cfg(wide, false, 5, {1, 1, 4, 3}, true, false, "ese")},
      {"ese_vovnet99b", cfg(wide, false, 5, {1, 3, 9, 3}, true, false, "ese")},
      {"eca_vovnet39b", cfg(wide, false, 5, {1, 1, 2, 2}, true, false, "eca")},
      {"ese_vovnet39b_evos", evos},
  };
  register_configs<VovNetImpl>("vovnet", models, [](ModelEntry& e, const VovCfg&) {
    if (e.name == "ese_vovnet57b") {
      e.mean = {0.5, 0.5, 0.5};
      e.std = {0.5, 0.5, 0.5};
    }
  });
}

}  // namespace vovnet
}  // namespace smp::timm
