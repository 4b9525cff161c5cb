// timm's HRNet (High-Resolution Net) and its features-only form (timm's HighResolutionNetFeatures,
// which returns the stem and the four stages through the classifier's "incre" blocks).
#include <smp/modules.h>
#include <smp/timm.h>

#include "timm/families.h"
#include "timm/layers/helpers.h"
#include "timm/models/resnet_blocks.h"

namespace smp::timm {

namespace nn = torch::nn;
namespace rb = resnet_blocks;

namespace hrnet {
namespace {

enum class BlockKind { kBasic, kBottleneck };
int64_t expansion(BlockKind b) { return b == BlockKind::kBasic ? 1 : 4; }

struct StageConfig {
  int64_t num_modules;
  BlockKind block;
  std::vector<int64_t> num_blocks, num_channels;
};

struct HrnetConfig {
  std::vector<StageConfig> stages;  // stage1 .. stage4
  bool head_conv_bias = true;
};

Block conv_bn(int64_t in, int64_t out, int64_t k, int64_t stride, bool relu, bool bias = false) {
  Block seq(nn::Conv2d(nn::Conv2dOptions(in, out, k).stride(stride).padding(k / 2).bias(bias)),
                     nn::BatchNorm2d(out));
  if (relu) seq->push_back(nn::ReLU());
  return seq;
}

// timm's ResNet block of the given kind, with a 1x1 projection shortcut when the shape changes.
nn::AnyModule make_block(BlockKind kind, int64_t in, int64_t planes, int64_t stride = 1) {
  rb::BlockArgs a{};
  a.inplanes = in;
  a.first_planes = a.width = planes;
  a.outplanes = planes * expansion(kind);
  a.stride = stride;
  a.dilation = a.first_dilation = a.cardinality = 1;
  a.group_norm = false;
  if (stride != 1 || in != a.outplanes)
    a.downsample = nn::Sequential(nn::Conv2d(nn::Conv2dOptions(in, a.outplanes, 1).stride(stride).bias(false)),
                                  nn::BatchNorm2d(a.outplanes));
  if (kind == BlockKind::kBasic) return nn::AnyModule(rb::BasicBlock(a));
  return nn::AnyModule(rb::Bottleneck(a));
}

nn::Sequential make_layer(BlockKind kind, int64_t in, int64_t planes, int64_t blocks) {
  nn::Sequential layer;
  for (int64_t i = 0; i < blocks; ++i) layer->push_back(make_block(kind, i == 0 ? in : planes * expansion(kind), planes));
  return layer;
}

// Parallel branches at decreasing resolutions, then every output fuses all branches (sum of
// upsampled / strided-conv'd inputs).
class HighResolutionModuleImpl : public nn::Module {
 public:
  HighResolutionModuleImpl(const StageConfig& cfg, std::vector<int64_t>& in_chs, bool multi_scale_output) {
    const auto n = cfg.num_blocks.size();
    if (in_chs.size() != n || cfg.num_channels.size() != n)
      throw std::invalid_argument("HRNet: num_branches, num_blocks, num_channels and num_in_chs must agree");
    branches = register_module("branches", nn::ModuleList());
    for (size_t b = 0; b < n; ++b) {
      branches->push_back(make_layer(cfg.block, in_chs[b], cfg.num_channels[b], cfg.num_blocks[b]));
      in_chs[b] = cfg.num_channels[b] * expansion(cfg.block);
    }
    if (n == 1) return;
    fuse_layers = register_module("fuse_layers", nn::ModuleList());
    for (size_t i = 0; i < (multi_scale_output ? n : 1); ++i) {
      nn::ModuleList row;
      for (size_t j = 0; j < n; ++j) {
        if (j > i) {
          row->push_back(conv_bn(in_chs[j], in_chs[i], 1, 1, false));
        } else if (j == i) {
          row->push_back(nn::Identity());
        } else {
          Block down;
          for (size_t k = 0; k < i - j; ++k) {
            const bool last = k == i - j - 1;
            down->push_back(conv_bn(in_chs[j], last ? in_chs[i] : in_chs[j], 3, 2, !last));
          }
          row->push_back(down);
        }
      }
      fuse_layers->push_back(row);
    }
  }

  std::vector<torch::Tensor> forward(std::vector<torch::Tensor> x) {
    for (size_t b = 0; b < x.size(); ++b) x[b] = branches[b]->as<nn::Sequential>()->forward(x[b]);
    if (!fuse_layers) return x;
    std::vector<torch::Tensor> fused;
    for (size_t i = 0; i < fuse_layers->size(); ++i) {
      auto row = fuse_layers[i]->as<nn::ModuleList>();
      torch::Tensor y;
      for (size_t j = 0; j < x.size(); ++j) {
        torch::Tensor t;
        if (j == i) {
          t = x[j];
        } else {
          t = (*row)[j]->as<Block>()->forward(x[j]);
          if (j > i) {  // nearest upsampling by 2^(j-i)
            const double scale = static_cast<double>(int64_t{1} << (j - i));
            t = torch::nn::functional::interpolate(
                t, torch::nn::functional::InterpolateFuncOptions().scale_factor(std::vector<double>{scale, scale}).mode(
                       torch::kNearest));
          }
        }
        y = y.defined() ? y + t : t;
      }
      fused.push_back(torch::relu(y));
    }
    return fused;
  }

 private:
  nn::ModuleList branches{nullptr}, fuse_layers{nullptr};
};
TORCH_MODULE(HighResolutionModule);

const std::vector<int64_t> kHeadChannels = {32, 64, 128, 256};

class HrnetImpl : public BackboneImpl {
 public:
  HrnetImpl(const std::string& name, const HrnetConfig& cfg, const ModelArgs& args)
      : BackboneImpl(name, args) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " supports output_stride 32 only (got " +
                                  std::to_string(args.output_stride()) + ")");
    constexpr int64_t kStemWidth = 64;
    conv1 = register_module("conv1", nn::Conv2d(nn::Conv2dOptions(args.in_chans(), kStemWidth, 3).stride(2).padding(1).bias(false)));
    bn1 = register_module("bn1", nn::BatchNorm2d(kStemWidth));
    conv2 = register_module("conv2", nn::Conv2d(nn::Conv2dOptions(kStemWidth, 64, 3).stride(2).padding(1).bias(false)));
    bn2 = register_module("bn2", nn::BatchNorm2d(64));
    const auto& s1 = cfg.stages[0];
    layer1 = register_module("layer1", make_layer(s1.block, 64, s1.num_channels[0], s1.num_blocks[0]));

    std::vector<int64_t> pre{s1.num_channels[0] * expansion(s1.block)};
    for (size_t s = 1; s < 4; ++s) {
      const auto& sc = cfg.stages[s];
      std::vector<int64_t> chs;
      for (auto c : sc.num_channels) chs.push_back(c * expansion(sc.block));
      transitions_.push_back(register_module("transition" + std::to_string(s), make_transition(pre, chs, s - 1)));
      auto stage = register_module("stage" + std::to_string(s + 1), nn::ModuleList());
      for (int64_t m = 0; m < sc.num_modules; ++m) stage->push_back(HighResolutionModule(sc, chs, true));
      stages_.push_back(stage);
      pre = chs;
    }

    feature_info_.push_back({"stem", 64, 2});
    for (size_t i = 0; i < 4; ++i)
      feature_info_.push_back({"stage" + std::to_string(i + 1), kHeadChannels[i] * 4, int64_t{4} << i});

    // The head's per-branch bottlenecks widen each stage; features_only stops after them.
    incre_modules = register_module("incre_modules", nn::ModuleList());
    for (size_t i = 0; i < pre.size(); ++i)
      incre_modules->push_back(make_layer(BlockKind::kBottleneck, pre[i], kHeadChannels[i], 1));
    if (args.features_only()) return;
    downsamp_modules = register_module("downsamp_modules", nn::ModuleList());
    for (size_t i = 0; i + 1 < pre.size(); ++i)
      downsamp_modules->push_back(conv_bn(kHeadChannels[i] * 4, kHeadChannels[i + 1] * 4, 3, 2, true, cfg.head_conv_bias));
    constexpr int64_t kNumFeatures = 2048;
    final_layer = register_module("final_layer", conv_bn(kHeadChannels[3] * 4, kNumFeatures, 1, 1, true, cfg.head_conv_bias));
    if (args.num_classes() > 0) classifier = register_module("classifier", nn::Linear(kNumFeatures, args.num_classes()));
  }

  FeatureWrap feature_wrap() const override { return FeatureWrap::kOwn; }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    layers::check_feature_indices(indices, 5, model_name());
    std::vector<torch::Tensor> out;
    auto y = torch::relu(bn1(conv1(x)));
    if (indices.front() == 0) out.push_back(y);
    if (out.size() == indices.size()) return out;
    const auto branches = incre(y);
    for (auto i : indices)
      if (i > 0) out.push_back(branches[static_cast<size_t>(i - 1)]);
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    const auto branches = incre(torch::relu(bn1(conv1(x))));
    auto y = branches[0];
    for (size_t i = 1; i < branches.size(); ++i)
      y = branches[i] + downsamp_modules[i - 1]->as<Block>()->forward(y);
    return pool_and_classify(final_layer->forward(y), classifier);
  }

  std::string first_conv() const override { return "conv1"; }

 private:
  // Stage transitions: 3x3 convs where a branch changes width, strided convs for new branches.
  // Identity entries are placeholders (timm registers nn.Identity there) marked in `identity_`.
  nn::ModuleList make_transition(const std::vector<int64_t>& pre, const std::vector<int64_t>& cur, size_t index) {
    nn::ModuleList list;
    identity_.emplace_back();
    for (size_t i = 0; i < cur.size(); ++i) {
      const bool same = i < pre.size() && cur[i] == pre[i];
      identity_[index].push_back(same);
      if (same) {
        list->push_back(nn::Identity());
      } else if (i < pre.size()) {
        list->push_back(conv_bn(pre[i], cur[i], 3, 1, true));
      } else {
        Block down;
        for (size_t j = 0; j < i + 1 - pre.size(); ++j)
          down->push_back(conv_bn(pre.back(), j == i - pre.size() ? cur[i] : pre.back(), 3, 2, true));
        list->push_back(down);
      }
    }
    return list;
  }

  // Stem's second conv, the stages, then the incre bottlenecks: one map per branch.
  std::vector<torch::Tensor> incre(const torch::Tensor& stem1) {
    auto y = layer1->forward(torch::relu(bn2(conv2(stem1))));
    std::vector<torch::Tensor> yl{y};
    for (size_t s = 0; s < 3; ++s) {
      std::vector<torch::Tensor> xl;
      for (size_t i = 0; i < transitions_[s]->size(); ++i) {
        // timm feeds every non-identity transition from the lowest-resolution branch.
        xl.push_back(identity_[s][i] ? yl[i] : transitions_[s][i]->as<Block>()->forward(yl.back()));
      }
      for (const auto& m : *stages_[s]) xl = m->as<HighResolutionModule>()->forward(xl);
      yl = xl;
    }
    for (size_t i = 0; i < yl.size(); ++i) yl[i] = incre_modules[i]->as<nn::Sequential>()->forward(yl[i]);
    return yl;
  }

  nn::Conv2d conv1{nullptr}, conv2{nullptr};
  nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  nn::Sequential layer1{nullptr};
  Block final_layer{nullptr};
  std::vector<nn::ModuleList> transitions_, stages_;
  std::vector<std::vector<bool>> identity_;
  nn::ModuleList incre_modules{nullptr}, downsamp_modules{nullptr};
  nn::Linear classifier{nullptr};
};

HrnetConfig standard(int64_t w) {
  return {{{1, BlockKind::kBottleneck, {4}, {64}},
           {1, BlockKind::kBasic, {4, 4}, {w, 2 * w}},
           {4, BlockKind::kBasic, {4, 4, 4}, {w, 2 * w, 4 * w}},
           {3, BlockKind::kBasic, {4, 4, 4, 4}, {w, 2 * w, 4 * w, 8 * w}}}};
}

}  // namespace

void register_family() {
  auto no_head_bias = [](HrnetConfig c) {
    c.head_conv_bias = false;
    return c;
  };
  const std::vector<std::pair<std::string, HrnetConfig>> models = {
      {"hrnet_w18_small",
       {{{1, BlockKind::kBottleneck, {1}, {32}},
         {1, BlockKind::kBasic, {2, 2}, {16, 32}},
         {1, BlockKind::kBasic, {2, 2, 2}, {16, 32, 64}},
         {1, BlockKind::kBasic, {2, 2, 2, 2}, {16, 32, 64, 128}}}}},
      {"hrnet_w18_small_v2",
       {{{1, BlockKind::kBottleneck, {2}, {64}},
         {1, BlockKind::kBasic, {2, 2}, {18, 36}},
         {3, BlockKind::kBasic, {2, 2, 2}, {18, 36, 72}},
         {2, BlockKind::kBasic, {2, 2, 2, 2}, {18, 36, 72, 144}}}}},
      {"hrnet_w18", standard(18)},
      {"hrnet_w30", standard(30)},
      {"hrnet_w32", standard(32)},
      {"hrnet_w40", standard(40)},
      {"hrnet_w44", standard(44)},
      {"hrnet_w48", standard(48)},
      {"hrnet_w64", standard(64)},
      {"hrnet_w18_ssld", no_head_bias(standard(18))},
      {"hrnet_w48_ssld", no_head_bias(standard(48))},
  };
  register_configs<HrnetImpl>("hrnet", models);
}

}  // namespace hrnet
}  // namespace smp::timm
