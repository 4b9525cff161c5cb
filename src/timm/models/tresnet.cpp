// timm's TResNet: space-to-depth stem, anti-aliased downsampling and SE in the early stages.
#include <smp/timm.h>

#include "timm/families.h"
#include "timm/layers/activations.h"
#include "timm/layers/attention_modules.h"
#include "timm/layers/create_aa.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"
#include "timm/layers/norm_act.h"

namespace smp::timm {

namespace tresnet {
namespace {

namespace nn = torch::nn;

enum class Act { kNone, kLeaky, kLeakySmall };  // LeakyReLU slopes 0.01 (stem) and 1e-3 (blocks)

// ConvNormAct ("conv", "bn") with a blur-pool after it in place of a stride of 2; the LeakyReLU slope
// of the blocks is not one of the shared activation names, so the activation is applied here.
class ConvBnImpl : public nn::Module {
 public:
  ConvBnImpl(int64_t in, int64_t out, int64_t k, int64_t stride, Act act, bool aa = false) : act_(act) {
    const bool use_aa = aa && stride > 1;
    const int64_t conv_stride = use_aa ? 1 : stride;
    conv_ = register_module("conv", nn::Conv2d(nn::Conv2dOptions(in, out, k)
                                                    .stride(conv_stride)
                                                    .padding(((conv_stride - 1) + (k - 1)) / 2)
                                                    .bias(false)));
    bn_ = register_module("bn", layers::BatchNormAct2d(out, ""));
    if (use_aa) aa_ = layers::create_aa("blur", out, stride);
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = bn_(conv_(x));
    if (act_ != Act::kNone) y = torch::leaky_relu(y, act_ == Act::kLeaky ? 0.01 : 1e-3);
    return aa_ ? aa_(y) : y;
  }

 private:
  Act act_;
  nn::Conv2d conv_{nullptr};
  layers::BatchNormAct2d bn_{nullptr};
  layers::TensorFn aa_;
};
TORCH_MODULE(ConvBn);

// Shortcut of a block that changes shape: ceil-mode average pool (stride 2) + 1x1 ConvNormAct.
class DownsampleImpl : public nn::Module {
 public:
  DownsampleImpl(int64_t in, int64_t out, int64_t stride) : pool_(stride == 2) {
    conv_ = register_module(pool_ ? "1" : "0", ConvBn(in, out, 1, 1, Act::kNone));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return conv_(pool_ ? torch::avg_pool2d(x, 2, 2, 0, /*ceil_mode=*/true, /*count_include_pad=*/false) : x);
  }

 private:
  bool pool_;
  ConvBn conv_{nullptr};
};
TORCH_MODULE(Downsample);

class BlockImpl : public nn::Module {
 public:
  BlockImpl(int64_t in, int64_t planes, int64_t stride, bool bottleneck, bool use_se, double drop_path)
      : bottleneck_(bottleneck), drop_path_(drop_path) {
    const int64_t expansion = bottleneck ? 4 : 1;
    if (stride != 1 || in != planes * expansion)
      downsample_ = register_module("downsample", Downsample(in, planes * expansion, stride));
    if (bottleneck) {
      conv1_ = register_module("conv1", ConvBn(in, planes, 1, 1, Act::kLeakySmall));
      conv2_ = register_module("conv2", ConvBn(planes, planes, 3, stride, Act::kLeakySmall, true));
      if (use_se)
        se_ = register_module("se", layers::SEModule(planes, std::max<int64_t>(planes * expansion / 8, 64), "relu"));
      conv3_ = register_module("conv3", ConvBn(planes, planes * expansion, 1, 1, Act::kNone));
    } else {
      conv1_ = register_module("conv1", ConvBn(in, planes, 3, stride, Act::kLeakySmall, true));
      conv2_ = register_module("conv2", ConvBn(planes, planes, 3, 1, Act::kNone));
      if (use_se) se_ = register_module("se", layers::SEModule(planes, std::max<int64_t>(planes / 4, 64), "relu"));
    }
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const auto shortcut = downsample_ ? downsample_(x) : x;
    auto y = conv2_(conv1_(x));
    if (bottleneck_) {
      if (se_) y = se_(y);
      y = conv3_(y);
    } else if (se_) {
      y = se_(y);
    }
    return torch::relu(layers::drop_path(y, drop_path_, is_training()) + shortcut);
  }

 private:
  bool bottleneck_;
  double drop_path_;
  Downsample downsample_{nullptr};
  ConvBn conv1_{nullptr}, conv2_{nullptr}, conv3_{nullptr};
  layers::SEModule se_{nullptr};
};
TORCH_MODULE(Block);

struct TResNetCfg {
  std::vector<int64_t> layers;
  double width_factor = 1.0;
  bool v2 = false;
};

// SpaceToDepth with block size 4: each 4x4 patch becomes 16 channels (block row, block col, channel).
torch::Tensor space_to_depth(const torch::Tensor& x) {
  const auto N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  return x.view({N, C, H / 4, 4, W / 4, 4}).permute({0, 3, 5, 1, 2, 4}).reshape({N, C * 16, H / 4, W / 4});
}

class TResNetImpl : public BackboneImpl {
 public:
  TResNetImpl(const std::string& name, const TResNetCfg& c, const ModelArgs& args) : BackboneImpl(name, args) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " supports output_stride 32 only (got " +
                                  std::to_string(args.output_stride()) + ")");
    int64_t planes = static_cast<int64_t>(64 * c.width_factor);
    if (c.v2) planes = planes / 8 * 8;
    const int64_t e12 = c.v2 ? 4 : 1;
    feature_info_ = {{"", planes, 2},
                     {"body.layer1", planes * e12, 4},
                     {"body.layer2", planes * 2 * e12, 8},
                     {"body.layer3", planes * 16, 16},
                     {"body.layer4", planes * 32, 32}};
    const auto last = layers::last_feature_index(args, 5, name);
    auto body = register_module("body", std::make_shared<nn::Module>());
    conv1_ = body->register_module("conv1", ConvBn(args.in_chans() * 16, planes, 3, 1, Act::kLeaky));
    const auto dpr = layers::drop_path_rates(args.drop_path_rate(), c.layers);
    int64_t in = planes;
    for (int64_t i = 0; i < std::min<int64_t>(last, 4); ++i) {
      const auto u = static_cast<size_t>(i);
      const bool bottleneck = c.v2 || i >= 2;
      const int64_t p = planes << i;
      nn::Sequential layer;
      for (int64_t b = 0; b < c.layers[u]; ++b) {
        layer->push_back(Block(in, p, b == 0 && i > 0 ? 2 : 1, bottleneck, i < 3, dpr[u][static_cast<size_t>(b)]));
        in = p * (bottleneck ? 4 : 1);
      }
      layers_.push_back(body->register_module("layer" + std::to_string(i + 1), layer));
    }
    if (!args.features_only() && args.num_classes() > 0) {
      auto head = register_module("head", std::make_shared<nn::Module>());
      fc_ = head->register_module("fc", nn::Linear(planes * 32, args.num_classes()));
    }
  }

  std::vector<int64_t> default_out_indices() const override { return {1, 2, 3, 4}; }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    layers::check_feature_indices(indices, static_cast<int64_t>(layers_.size()) + 1, model_name());
    std::vector<torch::Tensor> out;
    if (indices.empty()) return out;
    auto y = conv1_(space_to_depth(x));
    if (indices.front() == 0) out.push_back(y);
    for (int64_t i = 1; out.size() < indices.size(); ++i) {
      y = layers_[static_cast<size_t>(i - 1)]->forward(y);
      if (i == indices[out.size()]) out.push_back(y);
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    return pool_and_classify(forward_intermediates(x, {4}).front(), fc_);
  }

  std::vector<std::string> flattened_children() const override { return {"body"}; }
  std::string first_conv() const override { return "body.conv1.conv"; }

 private:
  ConvBn conv1_{nullptr};
  std::vector<nn::Sequential> layers_;
  nn::Linear fc_{nullptr};
};

}  // namespace

void register_family() {
  const std::vector<std::pair<std::string, TResNetCfg>> models = {
      {"tresnet_m", {{3, 4, 11, 3}, 1.0, false}},
      {"tresnet_l", {{4, 5, 18, 3}, 1.2, false}},
      {"tresnet_xl", {{4, 5, 24, 3}, 1.3, false}},
      {"tresnet_v2_l", {{3, 4, 23, 3}, 1.0, true}},
  };
  register_configs<TResNetImpl>("tresnet", models, [](ModelEntry& e, const TResNetCfg&) {
    // TResNet takes [0, 1] inputs without normalisation.
    e.mean = {0.0, 0.0, 0.0};
    e.std = {1.0, 1.0, 1.0};
  });
}

}  // namespace tresnet
}  // namespace smp::timm
