// timm's RDNet ("DenseNets Reloaded"): dense stages of ConvNeXt-like blocks joined by transitions.
#include <smp/timm.h>

#include "timm/families.h"
#include "timm/layers/attention_modules.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"
#include "timm/layers/mlp.h"

namespace smp::timm {

namespace rdnet {
namespace {

namespace nn = torch::nn;

// DenseBlock: 7x7 depthwise -> LayerNorm2d -> 1x1 -> GELU -> 1x1 (-> ESE), scaled by gamma; its output
// is the block's growth, concatenated to the stage's running feature list.
class DenseBlockImpl : public nn::Module {
 public:
  DenseBlockImpl(int64_t in, int64_t growth, bool ese, double drop_path) : drop_path_(drop_path) {
    gamma = register_parameter("gamma", torch::full({growth}, 1e-6));
    const int64_t inter = static_cast<int64_t>(static_cast<double>(in) * 4.0 / 8) * 8;
    auto block = register_module("layers", std::make_shared<nn::Module>());
    layers_ = block->register_module("layers", nn::Sequential());
    layers_->push_back(nn::Conv2d(nn::Conv2dOptions(in, in, 7).padding(3).groups(in)));
    layers_->push_back(layers::LayerNorm2d(in));
    layers_->push_back(nn::Conv2d(nn::Conv2dOptions(in, inter, 1)));
    layers_->push_back(nn::GELU());
    layers_->push_back(nn::Conv2d(nn::Conv2dOptions(inter, growth, 1)));
    if (ese) layers_->push_back(layers::EffectiveSEModule(growth));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = layers_->forward(x).mul(gamma.view({1, -1, 1, 1}));
    return layers::drop_path(y, drop_path_, is_training());
  }
  torch::Tensor gamma;

 private:
  double drop_path_;
  nn::Sequential layers_{nullptr};
};
TORCH_MODULE(DenseBlock);

class DenseStageImpl : public nn::Module {
 public:
  DenseStageImpl(int64_t blocks, int64_t in, int64_t growth, bool ese, const std::vector<double>& dpr) {
    for (int64_t i = 0; i < blocks; ++i) {
      blocks_.push_back(register_module("dense_block" + std::to_string(i),
                                        DenseBlock(in, growth, ese, dpr[static_cast<size_t>(i)])));
      in += growth;
    }
  }
  torch::Tensor forward(const torch::Tensor& x) {
    std::vector<torch::Tensor> features{x};
    for (auto& b : blocks_) features.push_back(b(torch::cat(features, 1)));
    return torch::cat(features, 1);
  }

 private:
  std::vector<DenseBlock> blocks_;
};
TORCH_MODULE(DenseStage);

struct RdnetCfg {
  int64_t num_init_features = 64;
  std::vector<int64_t> growth_rates;
  std::vector<bool> downsample;  // per stage; the first is unused
  int64_t blocks_per_stage = 3;
  int64_t plain_blocks = 2;  // the first stages use blocks without ESE
};

class RdnetImpl : public BackboneImpl {
 public:
  RdnetImpl(const std::string& name, const RdnetCfg& c, const ModelArgs& args) : BackboneImpl(name, args) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " supports output_stride 32 only (got " +
                                  std::to_string(args.output_stride()) + ")");
    const auto n = c.growth_rates.size();
    // Features are the stage outputs before each downsampling transition, and the last stage.
    int64_t stride = 4, chs = c.num_init_features;
    std::vector<int64_t> stage_in;
    for (size_t i = 0; i < n; ++i) {
      if (i > 0) {
        chs = static_cast<int64_t>(static_cast<double>(chs) * 0.5 / 8) * 8;
        if (c.downsample[i]) stride *= 2;
      }
      stage_in.push_back(chs);
      chs += c.blocks_per_stage * c.growth_rates[i];
      if (i + 1 == n || c.downsample[i + 1]) {
        feature_info_.push_back({"dense_stages." + std::to_string(i), chs, stride});
        feature_stages_.push_back(static_cast<int64_t>(i));
      }
    }
    const auto last = layers::last_feature_index(args, static_cast<int64_t>(feature_info_.size()), name);
    const auto num_stages = feature_stages_[static_cast<size_t>(last)] + 1;

    stem_ = register_module("stem", nn::Sequential(
                                        nn::Conv2d(nn::Conv2dOptions(args.in_chans(), c.num_init_features, 4).stride(4)),
                                        layers::LayerNorm2d(c.num_init_features)));
    std::vector<int64_t> depths(n, c.blocks_per_stage);
    const auto dpr = layers::drop_path_rates(args.drop_path_rate(), depths);
    stages_ = register_module("dense_stages", nn::ModuleList());
    int64_t prev = c.num_init_features;
    for (int64_t i = 0; i < num_stages; ++i) {
      const auto u = static_cast<size_t>(i);
      nn::Sequential stage;
      if (i > 0) {
        const int64_t k = c.downsample[u] ? 2 : 1;
        stage->push_back(layers::LayerNorm2d(prev));
        stage->push_back(nn::Conv2d(nn::Conv2dOptions(prev, stage_in[u], k).stride(k)));
      }
      stage->push_back(DenseStage(c.blocks_per_stage, stage_in[u], c.growth_rates[u], i >= c.plain_blocks, dpr[u]));
      stages_->push_back(stage);
      prev = stage_in[u] + c.blocks_per_stage * c.growth_rates[u];
    }
    if (!args.features_only()) {
      // NormMlpClassifierHead: pool -> LayerNorm2d -> fc.
      auto head = register_module("head", std::make_shared<nn::Module>());
      head_norm_ = head->register_module("norm", layers::LayerNorm2d(prev));
      if (args.num_classes() > 0) fc_ = head->register_module("fc", nn::Linear(prev, args.num_classes()));
    }
  }

  std::vector<int64_t> default_out_indices() const override { return {0, 1, 2, 3}; }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    layers::check_feature_indices(indices, static_cast<int64_t>(feature_info_.size()), model_name());
    std::vector<torch::Tensor> out;
    if (indices.empty()) return out;
    auto y = stem_->forward(x);
    for (int64_t i = 0; out.size() < indices.size(); ++i) {
      y = stages_[static_cast<size_t>(i)]->as<nn::Sequential>()->forward(y);
      if (feature_stages_[static_cast<size_t>(indices[out.size()])] == i) out.push_back(y);
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    auto y = stem_->forward(x);
    for (const auto& s : *stages_) y = s->as<nn::Sequential>()->forward(y);
    y = head_norm_(y.mean({2, 3}, /*keepdim=*/true)).flatten(1);
    return classify(y, fc_);
  }

  std::vector<std::string> flattened_children() const override { return {"stem", "dense_stages"}; }
  std::string first_conv() const override { return "stem.0"; }

 private:
  std::vector<int64_t> feature_stages_;
  nn::Sequential stem_{nullptr};
  nn::ModuleList stages_{nullptr};
  layers::LayerNorm2d head_norm_{nullptr};
  nn::Linear fc_{nullptr};
};

RdnetCfg cfg(int64_t init, std::vector<int64_t> growth, std::vector<bool> down) {
  RdnetCfg c;
  c.num_init_features = init;
  c.growth_rates = std::move(growth);
  c.downsample = std::move(down);
  return c;
}

}  // namespace

void register_family() {
  auto rep = [](std::vector<int64_t> head, int64_t v, int64_t count, std::vector<int64_t> tail) {
    head.insert(head.end(), static_cast<size_t>(count), v);
    head.insert(head.end(), tail.begin(), tail.end());
    return head;
  };
  const std::vector<bool> d7{false, true, true, false, false, false, true};
  const std::vector<bool> d11{false, true, true, false, false, false, false, false, false, true, false};
  const std::vector<bool> d12{false, true, true, false, false, false, false, false, false, false, true, false};
  const std::vector<std::pair<std::string, RdnetCfg>> models = {
      {"rdnet_tiny", cfg(64, {64, 104, 128, 128, 128, 128, 224}, d7)},
      {"rdnet_small", cfg(72, rep({64, 128}, 128, 7, {240, 240}), d11)},
      {"rdnet_base", cfg(120, rep({96, 128}, 168, 7, {336, 336}), d11)},
      {"rdnet_large", cfg(144, rep({128, 192}, 256, 8, {360, 360}), d12)},
  };
  register_configs<RdnetImpl>("rdnet", models);
}

}  // namespace rdnet
}  // namespace smp::timm
