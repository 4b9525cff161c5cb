// timm's DLA (Deep Layer Aggregation), including its Res2Net/Res2NeXt block variants.
#include <smp/timm.h>

#include <cmath>

#include "timm/families.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"

namespace smp::timm {

namespace nn = torch::nn;

namespace dla {
namespace {

enum class BlockKind { kBasic, kBottleneck, kBottle2neck };

struct DlaConfig {
  std::vector<int64_t> levels, channels;
  BlockKind block = BlockKind::kBottle2neck;
  int64_t cardinality = 1, base_width = 64;
  bool shortcut_root = false;
};

nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride = 1, int64_t groups = 1) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, k).stride(stride).padding(k / 2).groups(groups).bias(false));
}

// A block or a tree: both take the input, an optional shortcut (undefined: the block's own input)
// and the aggregation children.
class NodeImpl : public nn::Module {
 public:
  virtual torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& shortcut,
                                std::vector<torch::Tensor>* children) = 0;
};
using Node = std::shared_ptr<NodeImpl>;

class BasicImpl : public NodeImpl {
 public:
  BasicImpl(int64_t in, int64_t out, int64_t stride) {
    conv1 = register_module("conv1", conv(in, out, 3, stride));
    bn1 = register_module("bn1", nn::BatchNorm2d(out));
    conv2 = register_module("conv2", conv(out, out, 3));
    bn2 = register_module("bn2", nn::BatchNorm2d(out));
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& shortcut, std::vector<torch::Tensor>*) override {
    auto y = bn2(conv2(torch::relu(bn1(conv1(x)))));
    return torch::relu(y + (shortcut.defined() ? shortcut : x));
  }

 private:
  nn::Conv2d conv1{nullptr}, conv2{nullptr};
  nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
};

int64_t mid_planes(int64_t out, const DlaConfig& cfg) {
  constexpr int64_t kExpansion = 2;
  return static_cast<int64_t>(std::floor(static_cast<double>(out) * (static_cast<double>(cfg.base_width) / 64.0))) *
         cfg.cardinality / kExpansion;
}

class BottleneckImpl : public NodeImpl {
 public:
  BottleneckImpl(int64_t in, int64_t out, int64_t stride, const DlaConfig& cfg) {
    const auto mid = mid_planes(out, cfg);
    conv1 = register_module("conv1", conv(in, mid, 1));
    bn1 = register_module("bn1", nn::BatchNorm2d(mid));
    conv2 = register_module("conv2", conv(mid, mid, 3, stride, cfg.cardinality));
    bn2 = register_module("bn2", nn::BatchNorm2d(mid));
    conv3 = register_module("conv3", conv(mid, out, 1));
    bn3 = register_module("bn3", nn::BatchNorm2d(out));
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& shortcut, std::vector<torch::Tensor>*) override {
    auto y = torch::relu(bn1(conv1(x)));
    y = torch::relu(bn2(conv2(y)));
    y = bn3(conv3(y));
    return torch::relu(y + (shortcut.defined() ? shortcut : x));
  }

 private:
  nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
};

// Res2Net bottleneck: the mid channels are split into `scale` groups processed hierarchically.
class Bottle2neckImpl : public NodeImpl {
 public:
  static constexpr int64_t kScale = 4;
  Bottle2neckImpl(int64_t in, int64_t out, int64_t stride, const DlaConfig& cfg)
      : width_(mid_planes(out, cfg)), is_first_(stride > 1), stride_(stride) {
    conv1 = register_module("conv1", conv(in, width_ * kScale, 1));
    bn1 = register_module("bn1", nn::BatchNorm2d(width_ * kScale));
    convs = register_module("convs", nn::ModuleList());
    bns = register_module("bns", nn::ModuleList());
    for (int64_t i = 0; i < kScale - 1; ++i) {
      convs->push_back(conv(width_, width_, 3, stride, cfg.cardinality));
      bns->push_back(nn::BatchNorm2d(width_));
    }
    conv3 = register_module("conv3", conv(width_ * kScale, out, 1));
    bn3 = register_module("bn3", nn::BatchNorm2d(out));
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& shortcut, std::vector<torch::Tensor>*) override {
    auto y = torch::relu(bn1(conv1(x)));
    const auto parts = torch::split(y, width_, 1);
    std::vector<torch::Tensor> outs;
    torch::Tensor sp;
    for (size_t i = 0; i < convs->size(); ++i) {
      sp = (i == 0 || is_first_) ? parts[i] : sp + parts[i];
      sp = torch::relu(bns[i]->as<nn::BatchNorm2d>()->forward(convs[i]->as<nn::Conv2d>()->forward(sp)));
      outs.push_back(sp);
    }
    outs.push_back(is_first_ ? torch::avg_pool2d(parts.back(), 3, stride_, 1) : parts.back());
    y = bn3(conv3(torch::cat(outs, 1)));
    return torch::relu(y + (shortcut.defined() ? shortcut : x));
  }

 private:
  int64_t width_;
  bool is_first_;
  int64_t stride_;
  nn::Conv2d conv1{nullptr}, conv3{nullptr};
  nn::BatchNorm2d bn1{nullptr}, bn3{nullptr};
  nn::ModuleList convs{nullptr}, bns{nullptr};
};

Node make_block(int64_t in, int64_t out, int64_t stride, const DlaConfig& cfg) {
  switch (cfg.block) {
    case BlockKind::kBasic: return std::make_shared<BasicImpl>(in, out, stride);
    case BlockKind::kBottleneck: return std::make_shared<BottleneckImpl>(in, out, stride, cfg);
    case BlockKind::kBottle2neck: break;
  }
  return std::make_shared<Bottle2neckImpl>(in, out, stride, cfg);
}

class RootImpl : public nn::Module {
 public:
  RootImpl(int64_t in, int64_t out, bool shortcut) : shortcut_(shortcut) {
    conv = register_module("conv", dla::conv(in, out, 1));
    bn = register_module("bn", nn::BatchNorm2d(out));
  }
  torch::Tensor forward(const std::vector<torch::Tensor>& xs) {
    auto y = bn(conv(torch::cat(xs, 1)));
    if (shortcut_) y = y + xs.front();
    return torch::relu(y);
  }

 private:
  bool shortcut_;
  nn::Conv2d conv{nullptr};
  nn::BatchNorm2d bn{nullptr};
};
TORCH_MODULE(Root);

// A level of the hierarchy: two subtrees (or two blocks at the leaves) aggregated by a root.
class TreeImpl : public NodeImpl {
 public:
  TreeImpl(int64_t levels, int64_t in, int64_t out, int64_t stride, bool level_root, int64_t root_dim,
           const DlaConfig& cfg)
      : stride_(stride), level_root_(level_root) {
    if (root_dim == 0) root_dim = 2 * out;
    if (level_root) root_dim += in;
    if (levels == 1) {
      tree1_ = register_module("tree1", make_block(in, out, stride, cfg));
      tree2_ = register_module("tree2", make_block(out, out, 1, cfg));
      if (in != out) project_ = register_module("project", nn::Sequential(conv(in, out, 1), nn::BatchNorm2d(out)));
      root_ = register_module("root", Root(root_dim, out, cfg.shortcut_root));
    } else {
      tree1_ = register_module("tree1", std::make_shared<TreeImpl>(levels - 1, in, out, stride, false, 0, cfg));
      tree2_ = register_module("tree2",
                               std::make_shared<TreeImpl>(levels - 1, out, out, 1, false, root_dim + out, cfg));
    }
  }

  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor&, std::vector<torch::Tensor>* children) override {
    std::vector<torch::Tensor> own;
    if (!children) children = &own;
    auto bottom = stride_ > 1 ? torch::max_pool2d(x, stride_, stride_) : x;
    auto shortcut = project_ ? project_->forward(bottom) : bottom;
    if (level_root_) children->push_back(bottom);
    auto x1 = tree1_->forward(x, shortcut, nullptr);
    if (root_) {
      auto x2 = tree2_->forward(x1, torch::Tensor(), nullptr);
      std::vector<torch::Tensor> inputs{x2, x1};
      inputs.insert(inputs.end(), children->begin(), children->end());
      return root_(inputs);
    }
    children->push_back(x1);
    return tree2_->forward(x1, torch::Tensor(), children);
  }

 private:
  int64_t stride_;
  bool level_root_;
  Node tree1_, tree2_;
  nn::Sequential project_{nullptr};
  Root root_{nullptr};
};

class DlaImpl : public BackboneImpl {
 public:
  DlaImpl(const std::string& name, const DlaConfig& cfg, const ModelArgs& args)
      : BackboneImpl(name, args) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " supports output_stride 32 only (got " +
                                  std::to_string(args.output_stride()) + ")");
    const auto& c = cfg.channels;
    for (int64_t i = 0; i < 6; ++i)
      feature_info_.push_back({"level" + std::to_string(i), c[static_cast<size_t>(i)], int64_t{1} << i});
    const int64_t last = layers::last_feature_index(args, 6, name);
    base_layer_ = register_module(
        "base_layer", nn::Sequential(nn::Conv2d(nn::Conv2dOptions(args.in_chans(), c[0], 7).padding(3).bias(false)),
                                     nn::BatchNorm2d(c[0]), nn::ReLU()));
    conv_levels_.push_back(register_module("level0", conv_level(c[0], c[0], cfg.levels[0], 1)));
    if (last >= 1) conv_levels_.push_back(register_module("level1", conv_level(c[0], c[1], cfg.levels[1], 2)));
    for (int64_t i = 2; i <= std::min<int64_t>(last, 5); ++i) {
      const auto u = static_cast<size_t>(i);
      trees_.push_back(register_module("level" + std::to_string(i),
                                       std::make_shared<TreeImpl>(cfg.levels[u], c[u - 1], c[u], 2, i > 2, 0, cfg)));
    }
    if (!args.features_only() && args.num_classes() > 0)
      fc_ = register_module("fc", nn::Conv2d(nn::Conv2dOptions(c[5], args.num_classes(), 1)));
  }

  std::vector<int64_t> default_out_indices() const override { return {1, 2, 3, 4, 5}; }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    layers::check_feature_indices(indices, static_cast<int64_t>(conv_levels_.size() + trees_.size()), model_name());
    std::vector<torch::Tensor> out;
    auto y = base_layer_->forward(x);
    for (int64_t level = 0; out.size() < indices.size(); ++level) {
      y = level < 2 ? conv_levels_[static_cast<size_t>(level)]->forward(y)
                    : trees_[static_cast<size_t>(level - 2)]->forward(y, torch::Tensor(), nullptr);
      if (level == indices[out.size()]) out.push_back(y);
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    auto y = forward_intermediates(x, {5}).front().mean({2, 3}, /*keepdim=*/true);
    // fc is a 1x1 convolution, so the dropout is applied here rather than by classify().
    y = layers::dropout(y, head_drop_rate(), is_training());
    return fc_ ? fc_(y).flatten(1) : y.flatten(1);
  }

  std::string first_conv() const override { return "base_layer.0"; }

 private:
  static nn::Sequential conv_level(int64_t in, int64_t out, int64_t convs, int64_t stride) {
    nn::Sequential level;
    for (int64_t i = 0; i < convs; ++i) {
      level->push_back(conv(i == 0 ? in : out, out, 3, i == 0 ? stride : 1));
      level->push_back(nn::BatchNorm2d(out));
      level->push_back(nn::ReLU());
    }
    return level;
  }

  nn::Sequential base_layer_{nullptr};
  std::vector<nn::Sequential> conv_levels_;
  std::vector<std::shared_ptr<TreeImpl>> trees_;
  nn::Conv2d fc_{nullptr};
};

}  // namespace

void register_family() {
  const std::vector<int64_t> narrow{16, 32, 64, 64, 128, 256}, wide{16, 32, 128, 256, 512, 1024};
  const std::vector<int64_t> l34{1, 1, 1, 2, 2, 1}, l60{1, 1, 1, 2, 3, 1}, l102{1, 1, 1, 3, 4, 1};
  using B = BlockKind;
  const std::vector<std::pair<std::string, DlaConfig>> models = {
      {"dla60_res2net", {l60, wide, B::kBottle2neck, 1, 28}},
      {"dla60_res2next", {l60, wide, B::kBottle2neck, 8, 4}},
      {"dla34", {l34, {16, 32, 64, 128, 256, 512}, B::kBasic}},
      {"dla46_c", {l34, narrow, B::kBottleneck}},
      {"dla46x_c", {l34, narrow, B::kBottleneck, 32, 4}},
      {"dla60x_c", {l60, narrow, B::kBottleneck, 32, 4}},
      {"dla60", {l60, wide, B::kBottleneck}},
      {"dla60x", {l60, wide, B::kBottleneck, 32, 4}},
      {"dla102", {l102, wide, B::kBottleneck, 1, 64, true}},
      {"dla102x", {l102, wide, B::kBottleneck, 32, 4, true}},
      {"dla102x2", {l102, wide, B::kBottleneck, 64, 4, true}},
      {"dla169", {{1, 1, 2, 3, 5, 1}, wide, B::kBottleneck, 1, 64, true}},
  };
  register_configs<DlaImpl>("dla", models);
}

}  // namespace dla
}  // namespace smp::timm
