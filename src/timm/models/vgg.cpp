// timm's VGG (vgg11 .. vgg19, with and without batch norm).
#include <smp/timm.h>

#include "timm/families.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"

namespace smp::timm {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

namespace vgg {
namespace {

constexpr int64_t kPool = 0;  // a max-pool entry in a layer plan

const std::map<std::string, std::vector<int64_t>>& plans() {
  static const std::map<std::string, std::vector<int64_t>> p = {
      {"vgg11", {64, kPool, 128, kPool, 256, 256, kPool, 512, 512, kPool, 512, 512, kPool}},
      {"vgg13", {64, 64, kPool, 128, 128, kPool, 256, 256, kPool, 512, 512, kPool, 512, 512, kPool}},
      {"vgg16", {64, 64, kPool, 128, 128, kPool, 256, 256, 256, kPool, 512, 512, 512, kPool, 512, 512, 512, kPool}},
      {"vgg19",
       {64, 64, kPool, 128, 128, kPool, 256, 256, 256, 256, kPool, 512, 512, 512, 512, kPool, 512, 512, 512, 512, kPool}},
  };
  return p;
}

// The classifier's convolutional MLP: a 7x7 conv (the input is pooled up to 7x7 when smaller), dropout,
// a 1x1 conv.
class ConvMlpImpl : public nn::Module {
 public:
  ConvMlpImpl(int64_t in, int64_t hidden, int64_t kernel, double drop_rate) : kernel_(kernel), drop_rate_(drop_rate) {
    fc1 = register_module("fc1", nn::Conv2d(nn::Conv2dOptions(in, hidden, kernel)));
    fc2 = register_module("fc2", nn::Conv2d(nn::Conv2dOptions(hidden, hidden, 1)));
  }
  torch::Tensor forward(torch::Tensor x) {
    if (x.size(-2) < kernel_ || x.size(-1) < kernel_)
      x = F::adaptive_avg_pool2d(
          x, F::AdaptiveAvgPool2dFuncOptions({std::max(kernel_, x.size(-2)), std::max(kernel_, x.size(-1))}));
    return torch::relu(fc2(layers::dropout(torch::relu(fc1(x)), drop_rate_, is_training())));
  }

 private:
  int64_t kernel_;
  double drop_rate_;
  nn::Conv2d fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(ConvMlp);

class VggImpl : public BackboneImpl {
 public:
  VggImpl(const std::string& name, const std::vector<int64_t>& plan, bool batch_norm, const ModelArgs& args)
      : BackboneImpl(name, args) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " supports output_stride 32 only (got " +
                                  std::to_string(args.output_stride()) + "); VGG has no dilated variant");
    // Feature taps: the activation before each pool (reductions 1..16), then the last pool (32).
    std::vector<std::pair<int64_t, int64_t>> taps;  // (layer index, channels)
    int64_t chs = args.in_chans(), layer = 0, reduction = 1;
    for (auto v : plan) {
      if (v == kPool) {
        taps.emplace_back(layer - 1, chs);
        feature_info_.push_back({"features." + std::to_string(layer - 1), chs, reduction});
        reduction *= 2;
        ++layer;
      } else {
        layer += batch_norm ? 3 : 2;
        chs = v;
      }
    }
    feature_info_.push_back({"features." + std::to_string(layer - 1), chs, reduction});

    for (size_t i = 0; i < feature_info_.size(); ++i)
      tap_layers_.push_back(i < taps.size() ? taps[i].first : layer - 1);
    // features_only stops after the layer of the last requested feature.
    const int64_t last_layer = tap_layers_[static_cast<size_t>(
        layers::last_feature_index(args, static_cast<int64_t>(feature_info_.size()), name))];

    features_ = register_module("features", nn::Sequential());
    chs = args.in_chans();
    for (auto v : plan) {
      if (static_cast<int64_t>(features_->size()) > last_layer) break;
      if (v == kPool) {
        features_->push_back(nn::MaxPool2d(nn::MaxPool2dOptions(2).stride(2)));
        continue;
      }
      features_->push_back(nn::Conv2d(nn::Conv2dOptions(chs, v, 3).padding(1)));
      if (batch_norm) features_->push_back(nn::BatchNorm2d(v));
      features_->push_back(nn::ReLU());
      chs = v;
    }
    if (!args.features_only()) {
      pre_logits_ = register_module("pre_logits", ConvMlp(chs, 4096, 7, args.drop_rate()));
      if (args.num_classes() > 0) {
        auto head = register_module("head", std::make_shared<nn::Module>());
        fc_ = head->register_module("fc", nn::Linear(4096, args.num_classes()));
      }
    }
  }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    int64_t available = 0;
    for (auto l : tap_layers_) available += l < static_cast<int64_t>(features_->size()) ? 1 : 0;
    layers::check_feature_indices(indices, available, model_name());
    std::vector<torch::Tensor> out;
    auto y = x;
    for (int64_t l = 0; out.size() < indices.size(); ++l) {
      y = features_->begin()[l].forward(y);
      if (tap_layers_[static_cast<size_t>(indices[out.size()])] == l) out.push_back(y);
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    return pool_and_classify(pre_logits_(features_->forward(x)), fc_);
  }

  std::vector<std::string> flattened_children() const override { return {"features"}; }
  std::string first_conv() const override { return "features.0"; }

 private:
  std::vector<int64_t> tap_layers_;  // per feature: index of its layer in `features`
  nn::Sequential features_{nullptr};
  ConvMlp pre_logits_{nullptr};
  nn::Linear fc_{nullptr};
};

}  // namespace

void register_family() {
  for (const auto& [base, plan] : plans()) {
    for (bool bn : {false, true}) {
      ModelEntry entry;
      entry.name = bn ? base + "_bn" : base;
      entry.family = "vgg";
      entry.create = [name = entry.name, plan = plan, bn](const ModelArgs& args) -> Backbone {
        return std::make_shared<VggImpl>(name, plan, bn, args);
      };
      register_model(std::move(entry));
    }
  }
}

}  // namespace vgg
}  // namespace smp::timm
