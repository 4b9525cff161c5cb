// timm's StarNet: blocks whose mixing is an element-wise product of two 1x1 projections.
#include <smp/timm.h>

#include "timm/families.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"

namespace smp::timm {

namespace starnet {
namespace {

namespace nn = torch::nn;

// timm's ConvBN: "conv" (with bias) and an optional BatchNorm2d "bn".
class ConvBnImpl : public nn::Module {
 public:
  ConvBnImpl(int64_t in, int64_t out, int64_t k, int64_t stride = 1, int64_t padding = 0, int64_t groups = 1,
             bool with_bn = true) {
    conv_ = register_module("conv", nn::Conv2d(nn::Conv2dOptions(in, out, k).stride(stride).padding(padding).groups(groups)));
    if (with_bn) bn_ = register_module("bn", nn::BatchNorm2d(out));
  }
  torch::Tensor forward(const torch::Tensor& x) { return bn_ ? bn_(conv_(x)) : conv_(x); }

 private:
  nn::Conv2d conv_{nullptr};
  nn::BatchNorm2d bn_{nullptr};
};
TORCH_MODULE(ConvBn);

class BlockImpl : public nn::Module {
 public:
  BlockImpl(int64_t dim, int64_t mlp_ratio, double drop_path) : drop_path_(drop_path) {
    dwconv_ = register_module("dwconv", ConvBn(dim, dim, 7, 1, 3, dim, true));
    f1_ = register_module("f1", ConvBn(dim, mlp_ratio * dim, 1, 1, 0, 1, false));
    f2_ = register_module("f2", ConvBn(dim, mlp_ratio * dim, 1, 1, 0, 1, false));
    g_ = register_module("g", ConvBn(mlp_ratio * dim, dim, 1, 1, 0, 1, true));
    dwconv2_ = register_module("dwconv2", ConvBn(dim, dim, 7, 1, 3, dim, false));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = dwconv_(x);
    y = torch::hardtanh(f1_(y), 0.0, 6.0) * f2_(y);  // ReLU6(f1) * f2: the "star" operation
    y = dwconv2_(g_(y));
    return x + layers::drop_path(y, drop_path_, is_training());
  }

 private:
  double drop_path_;
  ConvBn dwconv_{nullptr}, f1_{nullptr}, f2_{nullptr}, g_{nullptr}, dwconv2_{nullptr};
};
TORCH_MODULE(Block);

struct StarCfg {
  int64_t base_dim = 32;
  std::vector<int64_t> depths;
  int64_t mlp_ratio = 4;
};

class StarNetImpl : public BackboneImpl {
 public:
  StarNetImpl(const std::string& name, const StarCfg& c, const ModelArgs& args) : BackboneImpl(name, args) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " supports output_stride 32 only (got " +
                                  std::to_string(args.output_stride()) + ")");
    for (int64_t i = 0; i < 4; ++i) feature_info_.push_back({"stages." + std::to_string(i), c.base_dim << i, int64_t{4} << i});
    const auto last = layers::last_feature_index(args, 4, name);
    stem_ = register_module("stem", nn::Sequential(ConvBn(args.in_chans(), 32, 3, 2, 1), nn::ReLU6()));
    const auto dpr = layers::drop_path_rates(args.drop_path_rate(), c.depths);
    stages_ = register_module("stages", nn::ModuleList());
    int64_t prev = 32;
    for (int64_t i = 0; i <= last; ++i) {
      const auto u = static_cast<size_t>(i);
      const int64_t dim = c.base_dim << i;
      nn::Sequential stage(ConvBn(prev, dim, 3, 2, 1));
      for (int64_t b = 0; b < c.depths[u]; ++b) stage->push_back(Block(dim, c.mlp_ratio, dpr[u][static_cast<size_t>(b)]));
      stages_->push_back(stage);
      prev = dim;
    }
    if (!args.features_only()) {
      norm_ = register_module("norm", nn::BatchNorm2d(prev));
      if (args.num_classes() > 0) fc_ = register_module("head", nn::Linear(prev, args.num_classes()));
    }
  }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    layers::check_feature_indices(indices, static_cast<int64_t>(stages_->size()), model_name());
    std::vector<torch::Tensor> out;
    if (indices.empty()) return out;
    auto y = stem_->forward(x);
    for (int64_t i = 0; out.size() < indices.size(); ++i) {
      y = stages_[static_cast<size_t>(i)]->as<nn::Sequential>()->forward(y);
      if (i == indices[out.size()]) out.push_back(y);
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    return pool_and_classify(norm_(forward_intermediates(x, {3}).front()), fc_);
  }

  std::vector<std::string> flattened_children() const override { return {"stem", "stages"}; }
  std::string first_conv() const override { return "stem.0.conv"; }

 private:
  nn::Sequential stem_{nullptr};
  nn::ModuleList stages_{nullptr};
  nn::BatchNorm2d norm_{nullptr};
  nn::Linear fc_{nullptr};
};

}  // namespace

void register_family() {
  const std::vector<std::pair<std::string, StarCfg>> models = {
      {"starnet_s1", {24, {2, 2, 8, 3}, 4}},   {"starnet_s2", {32, {1, 2, 6, 2}, 4}},
      {"starnet_s3", {32, {2, 2, 8, 4}, 4}},   {"starnet_s4", {32, {3, 3, 12, 5}, 4}},
      {"starnet_s050", {16, {1, 1, 3, 1}, 3}}, {"starnet_s100", {20, {1, 2, 4, 1}, 4}},
      {"starnet_s150", {24, {1, 2, 4, 2}, 3}},
  };
  register_configs<StarNetImpl>("starnet", models);
}

}  // namespace starnet
}  // namespace smp::timm
