// timm's SelecSLS networks (XNect's backbone): blocks with selective long and short skip connections.
#include <smp/timm.h>

#include <array>
#include <tuple>

#include "timm/families.h"
#include "timm/layers/helpers.h"

namespace smp::timm {

namespace selecsls {
namespace {

namespace nn = torch::nn;

// conv (no bias) + BatchNorm2d + ReLU as a Sequential, so its parameters are "0.weight", "1.*".
nn::Sequential conv_bn(int64_t in, int64_t out, int64_t k = 3, int64_t stride = 1) {
  return nn::Sequential(
      nn::Conv2d(nn::Conv2dOptions(in, out, k).stride(stride).padding(((stride - 1) + (k - 1)) / 2).bias(false)),
      nn::BatchNorm2d(out), nn::ReLU());
}

struct BlockSpec {
  int64_t in, skip, mid, out;
  bool is_first;
  int64_t stride;
};

// Its input and output are (x, skip): a first block starts a new skip from its own output.
class BlockImpl : public nn::Module {
 public:
  explicit BlockImpl(const BlockSpec& s) : is_first_(s.is_first) {
    conv1 = register_module("conv1", conv_bn(s.in, s.mid, 3, s.stride));
    conv2 = register_module("conv2", conv_bn(s.mid, s.mid, 1));
    conv3 = register_module("conv3", conv_bn(s.mid, s.mid / 2, 3));
    conv4 = register_module("conv4", conv_bn(s.mid / 2, s.mid, 1));
    conv5 = register_module("conv5", conv_bn(s.mid, s.mid / 2, 3));
    conv6 = register_module("conv6", conv_bn(2 * s.mid + (s.is_first ? 0 : s.skip), s.out, 1));
  }
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x, const torch::Tensor& skip) {
    auto d1 = conv1->forward(x);
    auto d2 = conv3->forward(conv2->forward(d1));
    auto d3 = conv5->forward(conv4->forward(d2));
    if (is_first_) {
      auto out = conv6->forward(torch::cat({d1, d2, d3}, 1));
      return {out, out};
    }
    return {conv6->forward(torch::cat({d1, d2, d3, skip}, 1)), skip};
  }

 private:
  bool is_first_;
  nn::Sequential conv1{nullptr}, conv2{nullptr}, conv3{nullptr}, conv4{nullptr}, conv5{nullptr}, conv6{nullptr};
};
TORCH_MODULE(Block);

struct SelecSlsCfg {
  std::vector<BlockSpec> blocks;
  std::vector<int64_t> feature_blocks;               // block indices of features 1..3
  std::vector<std::array<int64_t, 4>> head;          // (in, out, k, stride)
};

class SelecSlsImpl : public BackboneImpl {
 public:
  SelecSlsImpl(const std::string& name, const SelecSlsCfg& c, const ModelArgs& args)
      : BackboneImpl(name, args), feature_blocks_(c.feature_blocks) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " supports output_stride 32 only (got " +
                                  std::to_string(args.output_stride()) + ")");
    feature_info_.push_back({"stem.2", 32, 2});
    for (size_t i = 0; i < 3; ++i)
      feature_info_.push_back({"features." + std::to_string(c.feature_blocks[i]),
                               c.blocks[static_cast<size_t>(c.feature_blocks[i])].out, int64_t{4} << i});
    feature_info_.push_back({"head.1", c.head[1][1], 32});
    feature_info_.push_back({"head.3", c.head[3][1], 64});
    const auto last = layers::last_feature_index(args, 6, name);

    stem_ = register_module("stem", conv_bn(args.in_chans(), 32, 3, 2));
    features_ = register_module("features", nn::ModuleList());
    const auto num_blocks = last >= 4 ? c.blocks.size() : static_cast<size_t>(c.feature_blocks[static_cast<size_t>(std::max<int64_t>(last, 1) - 1)] + 1);
    if (last >= 1)
      for (size_t i = 0; i < num_blocks; ++i) features_->push_back(Block(c.blocks[i]));
    if (last >= 4) {
      head_ = register_module("head", nn::ModuleList());
      const size_t head_convs = last >= 5 ? 4 : 2;
      for (size_t i = 0; i < head_convs; ++i) head_->push_back(conv_bn(c.head[i][0], c.head[i][1], c.head[i][2], c.head[i][3]));
    }
    if (!args.features_only() && args.num_classes() > 0)
      fc_ = register_module("fc", nn::Linear(c.head[3][1], args.num_classes()));
  }

  std::vector<int64_t> default_out_indices() const override { return {0, 1, 2, 3, 4}; }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    layers::check_feature_indices(indices, static_cast<int64_t>(feature_info_.size()), model_name());
    std::vector<torch::Tensor> out;
    if (indices.empty()) return out;
    auto y = stem_->forward(x);
    if (indices.front() == 0) out.push_back(y);
    torch::Tensor skip;
    size_t feature = 1;
    for (size_t i = 0; i < features_->size() && out.size() < indices.size(); ++i) {
      std::tie(y, skip) = features_[i]->as<Block>()->forward(y, skip);
      if (feature <= 3 && static_cast<int64_t>(i) == feature_blocks_[feature - 1]) {
        if (indices[out.size()] == static_cast<int64_t>(feature)) out.push_back(y);
        ++feature;
      }
    }
    for (size_t i = 0; head_ && i < head_->size() && out.size() < indices.size(); ++i) {
      y = head_[i]->as<nn::Sequential>()->forward(y);
      if ((i == 1 && indices[out.size()] == 4) || (i == 3 && indices[out.size()] == 5)) out.push_back(y);
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    auto y = stem_->forward(x);
    torch::Tensor skip;
    for (const auto& m : *features_) std::tie(y, skip) = m->as<Block>()->forward(y, skip);
    for (const auto& m : *head_) y = m->as<nn::Sequential>()->forward(y);
    return pool_and_classify(y, fc_);
  }

  std::vector<std::string> flattened_children() const override { return {"stem", "features", "head"}; }
  std::string first_conv() const override { return "stem.0"; }

 private:
  std::vector<int64_t> feature_blocks_;
  nn::Sequential stem_{nullptr};
  nn::ModuleList features_{nullptr}, head_{nullptr};
  nn::Linear fc_{nullptr};
};

}  // namespace

void register_family() {
  const std::vector<BlockSpec> b42{{32, 0, 64, 64, true, 2},       {64, 64, 64, 128, false, 1},
                                   {128, 0, 144, 144, true, 2},    {144, 144, 144, 288, false, 1},
                                   {288, 0, 304, 304, true, 2},    {304, 304, 304, 480, false, 1}};
  const std::vector<BlockSpec> b60{{32, 0, 64, 64, true, 2},     {64, 64, 64, 128, false, 1},
                                   {128, 0, 128, 128, true, 2},  {128, 128, 128, 128, false, 1},
                                   {128, 128, 128, 288, false, 1}, {288, 0, 288, 288, true, 2},
                                   {288, 288, 288, 288, false, 1}, {288, 288, 288, 288, false, 1},
                                   {288, 288, 288, 416, false, 1}};
  std::vector<BlockSpec> b84{{32, 0, 64, 64, true, 2}, {64, 64, 64, 144, false, 1}, {144, 0, 144, 144, true, 2}};
  for (int i = 0; i < 3; ++i) b84.push_back({144, 144, 144, 144, false, 1});
  b84.push_back({144, 144, 144, 304, false, 1});
  b84.push_back({304, 0, 304, 304, true, 2});
  for (int i = 0; i < 4; ++i) b84.push_back({304, 304, 304, 304, false, 1});
  b84.push_back({304, 304, 304, 512, false, 1});
  auto head = [](int64_t in, int64_t mid, bool b, int64_t last_k = 1) {
    return std::vector<std::array<int64_t, 4>>{
        {in, mid, 3, 2}, {mid, 1024, 3, 1}, {1024, b ? 1280 : 1024, 3, 2}, {b ? 1280 : 1024, b ? 1024 : 1280, last_k, 1}};
  };
  const std::vector<std::pair<std::string, SelecSlsCfg>> models = {
      {"selecsls42", {b42, {1, 3, 5}, head(480, 960, false)}},
      {"selecsls42b", {b42, {1, 3, 5}, head(480, 960, true)}},
      {"selecsls60", {b60, {1, 4, 8}, head(416, 756, false)}},
      {"selecsls60b", {b60, {1, 4, 8}, head(416, 756, true)}},
      {"selecsls84", {b84, {1, 6, 12}, head(512, 960, false, 3)}},
  };
  register_configs<SelecSlsImpl>("selecsls", models);
}

}  // namespace selecsls
}  // namespace smp::timm
