// timm's "bring your own blocks" network (byobnet.py), for now the MobileOne models: stages of
// re-parameterisable MobileOne blocks (layers/mobileone.h) that `reparameterize()` folds into single
// convolutions with the same outputs.
#include <smp/modules.h>
#include <smp/timm.h>

#include "timm/families.h"
#include "timm/layers/attention_modules.h"
#include "timm/layers/helpers.h"
#include "timm/layers/mobileone.h"

namespace smp::timm {

namespace nn = torch::nn;

namespace {

struct MobileOneConfig {
  std::vector<double> width_factors;  // per stage, on (64, 128, 256, 512)
  int64_t stem_chs = 64;
  int64_t num_conv_branches = 1;
  std::vector<int64_t> se_blocks = {0, 0, 0, 0};  // the last n blocks of each stage get squeeze-excite
};
const std::vector<int64_t> kDepths = {2, 8, 10, 1};
const std::vector<int64_t> kWidths = {64, 128, 256, 512};

// A block as byobnet builds them: ReLU, squeeze-excite (when asked) named "attn".
layers::MobileOneBlock mobileone_block(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t groups,
                                       int64_t branches, bool se) {
  return layers::MobileOneBlock(
      layers::MobileOneBlockOptions(in, out, kernel).stride(stride).groups(groups).num_conv_branches(branches),
      se ? layers::create_attn("se", out) : nn::AnyModule());
}

class MobileOneImpl : public BackboneImpl {
 public:
  MobileOneImpl(const std::string& name, const MobileOneConfig& c, const ModelArgs& args)
      : name_(name), features_only_(args.features_only()) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " supports output_stride 32 only (got " +
                                  std::to_string(args.output_stride()) + ")");
    stem = register_module("stem", mobileone_block(args.in_chans(), c.stem_chs, 3, 2, 1, 1, false));
    feature_info_.push_back({"stem", c.stem_chs, 2});
    std::vector<int64_t> outs;
    for (size_t s = 0; s < 4; ++s) {
      outs.push_back(layers::make_divisible(static_cast<double>(kWidths[s]) * c.width_factors[s]));
      // stages.0-2 are features; the last stage's output is the "final_conv" feature (an identity).
      feature_info_.push_back({s < 3 ? "stages." + std::to_string(s) : "final_conv", outs[s], int64_t{4} << s});
    }
    const int64_t last = layers::last_feature_index(args, 5);
    stages = register_module("stages", nn::Sequential());
    int64_t prev = c.stem_chs;
    // Each block is a depthwise kxk block then a pointwise block; the first of a stage has stride 2.
    auto dw = std::min<int64_t>(64, static_cast<int64_t>(64 * c.width_factors[0]));
    for (size_t s = 0; static_cast<int64_t>(s) < last && s < 4; ++s) {
      Block stage;
      for (int64_t b = 0; b < kDepths[s]; ++b) {
        const bool se = b >= kDepths[s] - c.se_blocks[s];
        stage->push_back(mobileone_block(prev, dw, 3, b == 0 ? 2 : 1, dw, c.num_conv_branches, se));
        stage->push_back(mobileone_block(dw, outs[s], 1, 1, 1, c.num_conv_branches, se));
        prev = dw = outs[s];
      }
      stages->push_back(stage);
    }
    if (last == 4) register_module("final_conv", nn::Identity());
    if (!features_only_ && args.num_classes() > 0) {
      auto head = register_module("head", std::make_shared<nn::Module>());
      fc_ = head->register_module("fc", nn::Linear(prev, args.num_classes()));
    }
  }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    layers::check_feature_indices(indices, static_cast<int64_t>(stages->size()) + 1, name_);
    std::vector<torch::Tensor> out;
    auto y = stem(x);
    if (indices.front() == 0) out.push_back(y);
    for (int64_t i = 1; out.size() < indices.size(); ++i) {
      y = stages[static_cast<size_t>(i - 1)]->as<Block>()->forward(y);
      if (i == indices[out.size()]) out.push_back(y);
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    if (features_only_) throw std::logic_error(name_ + " was built with features_only and has no classifier");
    auto y = stages->forward(stem(x)).mean({2, 3});
    return fc_ ? fc_(y) : y;
  }

  std::vector<std::string> flattened_children() const override { return {"stages"}; }
  std::string first_conv() const override { return "stem.conv_kxk.0.conv"; }

 private:
  std::string name_;
  bool features_only_;
  layers::MobileOneBlock stem{nullptr};
  nn::Sequential stages{nullptr};
  nn::Linear fc_{nullptr};
};

}  // namespace

void register_byobnet_family() {
  const std::vector<std::pair<std::string, MobileOneConfig>> models = {
      {"mobileone_s0", {{0.75, 1.0, 1.0, 2.0}, 48, 4}},
      {"mobileone_s1", {{1.5, 1.5, 2.0, 2.5}, 64}},
      {"mobileone_s2", {{1.5, 2.0, 2.5, 4.0}, 64}},
      {"mobileone_s3", {{2.0, 2.5, 3.0, 4.0}, 64}},
      {"mobileone_s4", {{3.0, 3.5, 3.5, 4.0}, 64, 1, {0, 0, 5, 1}}},
  };
  register_configs<MobileOneImpl>("byobnet", models);
}

}  // namespace smp::timm
