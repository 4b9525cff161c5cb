// ResNet / ResNeXt / SE-ResNeXt / ECA-ResNet / ResNet-RS and their stem, downsample, norm and
// anti-aliasing variants, as timm's resnet.py builds them.
#include <smp/timm.h>

#include <array>

#include "timm/layers/helpers.h"
#include "timm/families.h"
#include "timm/layers/attention_modules.h"
#include "timm/layers/blur_pool.h"
#include "timm/layers/create_aa.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/pool2d_same.h"
#include "timm/models/resnet_blocks.h"

namespace smp::timm {

namespace resnet {
namespace {

namespace nn = torch::nn;
using namespace resnet_blocks;  // NOLINT: the blocks are this family's own

enum class BlockType { kBasic, kBottleneck };
enum class StemType { kSingle, kDeep, kDeepTiered };  // 7x7 conv; three 3x3 convs; tiered widths

int64_t expansion(BlockType t) { return t == BlockType::kBasic ? 1 : 4; }

// Channel widths of timm's pruned checkpoints (models/_pruned/*.txt): for every stage the output
// width and each bottleneck's (conv1, conv2) widths. The stem is not pruned.
struct PrunedStage {
  int64_t out;
  std::vector<std::pair<int64_t, int64_t>> blocks;
};
using PrunedWidths = std::array<PrunedStage, 4>;

struct ResNetConfig {
  std::vector<BlockType> block;  // per stage
  std::vector<int64_t> layers;   // blocks per stage
  std::vector<int64_t> channels = {64, 128, 256, 512};
  int64_t cardinality = 1, base_width = 64;
  StemType stem = StemType::kSingle;
  int64_t stem_width = 64;
  bool replace_stem_pool = false;
  int64_t block_reduce_first = 1, down_kernel_size = 1;
  bool avg_down = false;
  bool group_norm = false;
  std::string aa;    // anti-aliasing: "", "avg" or "blur" (timm's create_aa names)
  std::string attn;  // "", "se" or "eca"
  double se_rd_ratio = 1.0 / 16;
  const PrunedWidths* pruned = nullptr;
  BlockFactory make_block;  // another family's blocks (sknet); empty = timm's BasicBlock / Bottleneck

  // Variant modifiers, named after timm's suffixes.
  ResNetConfig& deep(int64_t width = 32) {
    stem = StemType::kDeep;
    stem_width = width;
    return *this;
  }
  ResNetConfig& tiered() {
    stem = StemType::kDeepTiered;
    stem_width = 32;
    return *this;
  }
  ResNetConfig& down_avg() {
    avg_down = true;
    return *this;
  }
  ResNetConfig& c() { return deep(32); }
  ResNetConfig& d() { return deep(32).down_avg(); }
  ResNetConfig& s() { return deep(64); }
  ResNetConfig& t() { return tiered().down_avg(); }
  ResNetConfig& groups(int64_t card, int64_t width) {
    cardinality = card;
    base_width = width;
    return *this;
  }
  ResNetConfig& with_attn(const std::string& name, double rd_ratio = 1.0 / 16) {
    attn = name;
    se_rd_ratio = rd_ratio;
    return *this;
  }
  ResNetConfig& with_aa(const std::string& kind) {
    aa = kind;
    return *this;
  }
};

ResNetConfig make_config(BlockType type, std::vector<int64_t> layers) {
  ResNetConfig c;
  c.block.assign(layers.size(), type);
  c.layers = std::move(layers);
  return c;
}
ResNetConfig basic(std::vector<int64_t> layers) { return make_config(BlockType::kBasic, std::move(layers)); }
ResNetConfig bottleneck(std::vector<int64_t> layers) { return make_config(BlockType::kBottleneck, std::move(layers)); }


// Projection shortcut: strided (or dilated) conv + norm.
nn::Sequential downsample_conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t dilation,
                               int64_t first_dilation, bool group_norm) {
  kernel = (stride == 1 && dilation == 1) ? 1 : kernel;
  first_dilation = kernel > 1 ? first_dilation : 1;
  nn::Sequential seq;
  seq->push_back(conv(in, out, kernel, stride, get_padding(kernel, stride, first_dilation), first_dilation));
  seq->push_back(make_norm(group_norm, out));
  return seq;
}

// 'D' shortcut: average pool (keeps child index 0 even when it is an identity), 1x1 conv, norm.
nn::Sequential downsample_avg(int64_t in, int64_t out, int64_t stride, int64_t dilation, bool group_norm) {
  nn::Sequential seq;
  if (stride == 1 && dilation == 1) {
    seq->push_back(nn::Identity());
  } else if (dilation > 1) {
    seq->push_back(layers::AvgPool2dSame(2, 1, /*ceil_mode=*/true, /*count_include_pad=*/false));
  } else {
    seq->push_back(nn::AvgPool2d(nn::AvgPool2dOptions(2).stride(stride).ceil_mode(true).count_include_pad(false)));
  }
  seq->push_back(conv(in, out, 1));
  seq->push_back(make_norm(group_norm, out));
  return seq;
}

constexpr int64_t kNumFeatures = 5;  // act1 (stem), layer1..layer4

class ResNetImpl : public BackboneImpl {
 public:
  ResNetImpl(const std::string& name, const ResNetConfig& cfg, const ModelArgs& args)
      : BackboneImpl(name, args) {
    const bool deep_stem = cfg.stem != StemType::kSingle;
    const bool gn = cfg.group_norm;
    first_conv_ = deep_stem ? "conv1.0" : "conv1";

    // features_only builds the stages up to the last requested feature, like timm's FeatureListNet
    // (feature 0 is the stem, so that is also the number of stages).
    const int64_t num_stages = layers::last_feature_index(args, kNumFeatures, name);

    // Stem
    int64_t inplanes = deep_stem ? cfg.stem_width * 2 : 64;
    int64_t full_inplanes = inplanes;  // the unpruned width, which decides where shortcuts project
    if (deep_stem) {
      int64_t c0 = cfg.stem_width, c1 = cfg.stem_width;
      if (cfg.stem == StemType::kDeepTiered) c0 = 3 * (cfg.stem_width / 4);
      nn::Sequential stem;
      stem->push_back(conv(args.in_chans(), c0, 3, 2, 1));
      stem->push_back(make_norm(gn, c0));
      stem->push_back(nn::ReLU());
      stem->push_back(conv(c0, c1, 3, 1, 1));
      stem->push_back(make_norm(gn, c1));
      stem->push_back(nn::ReLU());
      stem->push_back(conv(c1, inplanes, 3, 1, 1));
      conv1_ = forward_of(register_module("conv1", stem));
    } else {
      conv1_ = forward_of(register_module("conv1", conv(args.in_chans(), inplanes, 7, 2, 3)));
    }
    bn1_ = make_norm(gn, inplanes);
    register_module("bn1", bn1_.ptr());
    register_module("act1", nn::ReLU());  // a child, so features ending at act1 can be wrapped
    feature_info_.push_back({"act1", inplanes, 2});

    // Stem pooling (timm keeps the name 'maxpool' whatever it holds).
    if (cfg.replace_stem_pool) {
      nn::Sequential pool;
      pool->push_back(conv(inplanes, inplanes, 3, cfg.aa.empty() ? 2 : 1, 1));
      if (cfg.aa == "blur") pool->push_back(layers::BlurPool2d(inplanes, 3, 2));
      if (cfg.aa == "avg") pool->push_back(nn::AvgPool2d(nn::AvgPool2dOptions(2)));
      pool->push_back(make_norm(gn, inplanes));
      pool->push_back(nn::ReLU());
      maxpool_ = forward_of(register_module("maxpool", pool));
    } else if (cfg.aa == "avg") {
      maxpool_ = forward_of(register_module("maxpool", nn::AvgPool2d(nn::AvgPool2dOptions(2))));
    } else if (cfg.aa == "blur") {
      nn::Sequential pool;
      pool->push_back(nn::MaxPool2d(nn::MaxPool2dOptions(3).stride(1).padding(1)));
      pool->push_back(layers::BlurPool2d(inplanes, 3, 2));
      maxpool_ = forward_of(register_module("maxpool", pool));
    } else {
      maxpool_ = forward_of(register_module("maxpool", nn::MaxPool2d(nn::MaxPool2dOptions(3).stride(2).padding(1))));
    }

    // Stages, with timm's make_blocks stride/dilation bookkeeping for output_stride 8 and 16.
    const int64_t output_stride = args.output_stride();
    int64_t net_stride = 4, dilation = 1, prev_dilation = 1;
    const auto drop_path_rates = layers::drop_path_rates(args.drop_path_rate(), cfg.layers);
    for (size_t si = 0; si < cfg.layers.size(); ++si) {
      const auto type = cfg.block[si];
      const int64_t planes = cfg.channels[si];
      const int64_t full_out = planes * expansion(type);
      const PrunedStage* pruned = cfg.pruned ? &(*cfg.pruned)[si] : nullptr;
      const int64_t out = pruned ? pruned->out : full_out;

      int64_t stride = si == 0 ? 1 : 2;
      if (net_stride >= output_stride) {
        dilation *= stride;
        stride = 1;
      } else {
        net_stride *= stride;
      }
      const std::string stage_name = "layer" + std::to_string(si + 1);
      feature_info_.push_back({stage_name, full_out, net_stride});
      if (static_cast<int64_t>(si) >= num_stages) continue;  // pruned for features_only, but still described

      nn::Sequential stage;
      for (int64_t bi = 0; bi < cfg.layers[si]; ++bi) {
        BlockArgs a;
        a.inplanes = inplanes;
        a.outplanes = out;
        a.stride = bi == 0 ? stride : 1;
        a.dilation = dilation;
        a.first_dilation = prev_dilation;
        a.cardinality = cfg.cardinality;
        a.group_norm = gn;
        a.aa = cfg.aa;
        a.attn = cfg.attn;
        a.attn_channels = full_out;
        a.se_rd_ratio = cfg.se_rd_ratio;
        a.drop_path_rate = drop_path_rates[si][static_cast<size_t>(bi)];
        if (type == BlockType::kBasic) {
          if (cfg.cardinality != 1 || cfg.base_width != 64)
            throw std::invalid_argument(name + ": BasicBlock supports only cardinality 1 and base width 64");
          a.first_planes = planes / cfg.block_reduce_first;
          a.width = a.first_planes;
        } else {
          a.width = planes * cfg.base_width / 64 * cfg.cardinality;
          a.first_planes = a.width / cfg.block_reduce_first;
        }
        if (pruned) {
          const auto& widths = pruned->blocks.at(static_cast<size_t>(bi));
          a.first_planes = widths.first;
          a.width = widths.second;
        }
        if (bi == 0 && (stride != 1 || full_inplanes != full_out)) {
          a.downsample = cfg.avg_down ? downsample_avg(inplanes, out, stride, dilation, gn)
                                      : downsample_conv(inplanes, out, cfg.down_kernel_size, stride, dilation,
                                                        prev_dilation, gn);
        }
        if (cfg.make_block)
          stage->push_back(cfg.make_block(a));
        else if (type == BlockType::kBasic)
          stage->push_back(BasicBlock(a));
        else
          stage->push_back(Bottleneck(a));
        prev_dilation = dilation;
        inplanes = out;
        full_inplanes = full_out;
      }
      stages_.push_back(register_module(stage_name, stage));
    }

    if (!args.features_only() && args.num_classes() > 0)
      fc_ = register_module("fc", nn::Linear(inplanes, args.num_classes()));
  }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    const auto built = static_cast<int64_t>(stages_.size()) + 1;
    layers::check_feature_indices(indices, built, model_name());
    std::vector<torch::Tensor> out;
    if (indices.empty()) return out;
    auto y = stem(x);
    if (indices.front() == 0) out.push_back(y);
    y = maxpool_(y);
    for (int64_t i = 1; out.size() < indices.size(); ++i) {
      y = stages_[static_cast<size_t>(i - 1)]->forward(y);
      if (i == indices[out.size()]) out.push_back(y);
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    auto y = maxpool_(stem(x));
    for (auto& stage : stages_) y = stage->forward(y);
    return pool_and_classify(y, fc_);
  }

  std::string first_conv() const override { return first_conv_; }

 private:
  torch::Tensor stem(const torch::Tensor& x) { return bn1_.forward(conv1_(x)).relu_(); }

  std::string first_conv_;
  TensorFn conv1_, maxpool_;
  nn::AnyModule bn1_;
  std::vector<nn::Sequential> stages_;
  nn::Linear fc_{nullptr};
};

const PrunedWidths& ecaresnet50d_pruned_widths() {
  static const PrunedWidths w = {{
      {19, {{47, 18}, {52, 22}, {64, 35}}},
      {171, {{85, 37}, {107, 80}, {120, 85}, {125, 87}}},
      {818, {{198, 126}, {255, 232}, {256, 233}, {253, 235}, {256, 225}, {256, 239}}},
      {2022, {{492, 237}, {512, 500}, {512, 490}}},
  }};
  return w;
}

const PrunedWidths& ecaresnet101d_pruned_widths() {
  static const PrunedWidths w = {{
      {26, {{45, 25}, {53, 20}, {60, 27}}},
      {142, {{81, 24}, {93, 49}, {102, 54}, {122, 78}}},
      {278, {{101, 25}, {239, 160}, {234, 156}, {250, 176}, {253, 191}, {251, 175}, {230, 128}, {244, 154},
             {244, 159}, {238, 97},  {244, 149}, {253, 181}, {245, 119}, {255, 216}, {256, 201}, {253, 149},
             {254, 141}, {256, 190}, {256, 217}, {255, 156}, {256, 155}, {256, 232}, {256, 214}}},
      {2042, {{499, 289}, {512, 512}, {512, 502}}},
  }};
  return w;
}

}  // namespace

Backbone create_custom_block_resnet(const std::string& name, const CustomBlockResNet& spec, const ModelArgs& args) {
  auto cfg = make_config(spec.bottleneck ? BlockType::kBottleneck : BlockType::kBasic, spec.layers);
  cfg.groups(spec.cardinality, spec.base_width);
  if (spec.d_variant) cfg.deep(spec.stem_width).down_avg();
  cfg.make_block = spec.make_block;
  return std::make_shared<ResNetImpl>(name, cfg, args);
}

void register_family() {
  const std::vector<int64_t> r18{2, 2, 2, 2}, r34{3, 4, 6, 3}, r101{3, 4, 23, 3}, r152{3, 8, 36, 3},
      r200{3, 24, 36, 3}, r269{3, 30, 48, 8};
  const std::string se = "se", eca = "eca";

  std::vector<std::pair<std::string, ResNetConfig>> models = {
      {"resnet10t", basic({1, 1, 1, 1}).t()},
      {"resnet14t", bottleneck({1, 1, 1, 1}).t()},
      {"resnet18", basic(r18)},
      {"resnet18d", basic(r18).d()},
      {"resnet34", basic(r34)},
      {"resnet34d", basic(r34).d()},
      {"resnet26", bottleneck(r18)},
      {"resnet26t", bottleneck(r18).t()},
      {"resnet26d", bottleneck(r18).d()},
      {"resnet50", bottleneck(r34)},
      {"resnet50c", bottleneck(r34).c()},
      {"resnet50d", bottleneck(r34).d()},
      {"resnet50s", bottleneck(r34).s()},
      {"resnet50t", bottleneck(r34).t()},
      {"resnet101", bottleneck(r101)},
      {"resnet101c", bottleneck(r101).c()},
      {"resnet101d", bottleneck(r101).d()},
      {"resnet101s", bottleneck(r101).s()},
      {"resnet152", bottleneck(r152)},
      {"resnet152c", bottleneck(r152).c()},
      {"resnet152d", bottleneck(r152).d()},
      {"resnet152s", bottleneck(r152).s()},
      {"resnet200", bottleneck(r200)},
      {"resnet200d", bottleneck(r200).d()},
      {"wide_resnet50_2", bottleneck(r34).groups(1, 128)},
      {"wide_resnet101_2", bottleneck(r101).groups(1, 128)},
      {"resnext50_32x4d", bottleneck(r34).groups(32, 4)},
      {"resnext50d_32x4d", bottleneck(r34).groups(32, 4).d()},
      {"resnext101_32x4d", bottleneck(r101).groups(32, 4)},
      {"resnext101_32x8d", bottleneck(r101).groups(32, 8)},
      {"resnext101_32x16d", bottleneck(r101).groups(32, 16)},
      {"resnext101_32x32d", bottleneck(r101).groups(32, 32)},
      {"resnext101_64x4d", bottleneck(r101).groups(64, 4)},
      {"ecaresnet26t", bottleneck(r18).t().with_attn(eca)},
      {"ecaresnet50d", bottleneck(r34).d().with_attn(eca)},
      {"ecaresnet50t", bottleneck(r34).t().with_attn(eca)},
      // 7x7 stem (stem_width is unused without a deep stem) with the 'D' average-pool shortcut.
      {"ecaresnetlight", bottleneck({1, 1, 11, 3}).down_avg().with_attn(eca)},
      {"ecaresnet101d", bottleneck(r101).d().with_attn(eca)},
      {"ecaresnet200d", bottleneck(r200).d().with_attn(eca)},
      {"ecaresnet269d", bottleneck(r269).d().with_attn(eca)},
      {"ecaresnext26t_32x4d", bottleneck(r18).groups(32, 4).t().with_attn(eca)},
      {"ecaresnext50t_32x4d", bottleneck(r18).groups(32, 4).t().with_attn(eca)},  // timm's depths: (2, 2, 2, 2)
      {"seresnet18", basic(r18).with_attn(se)},
      {"seresnet34", basic(r34).with_attn(se)},
      {"seresnet50", bottleneck(r34).with_attn(se)},
      {"seresnet50t", bottleneck(r34).t().with_attn(se)},
      {"seresnet101", bottleneck(r101).with_attn(se)},
      {"seresnet152", bottleneck(r152).with_attn(se)},
      {"seresnet152d", bottleneck(r152).d().with_attn(se)},
      {"seresnet200d", bottleneck(r200).d().with_attn(se)},
      {"seresnet269d", bottleneck(r269).d().with_attn(se)},
      {"seresnext26d_32x4d", bottleneck(r18).groups(32, 4).d().with_attn(se)},
      {"seresnext26t_32x4d", bottleneck(r18).groups(32, 4).t().with_attn(se)},
      {"seresnext50_32x4d", bottleneck(r34).groups(32, 4).with_attn(se)},
      {"seresnext101_32x4d", bottleneck(r101).groups(32, 4).with_attn(se)},
      {"seresnext101_32x8d", bottleneck(r101).groups(32, 8).with_attn(se)},
      {"seresnext101d_32x8d", bottleneck(r101).groups(32, 8).d().with_attn(se)},
      {"seresnext101_64x4d", bottleneck(r101).groups(64, 4).with_attn(se)},
      {"resnetblur18", basic(r18).with_aa("blur")},
      {"resnetblur50", bottleneck(r34).with_aa("blur")},
      {"resnetblur50d", bottleneck(r34).d().with_aa("blur")},
      {"resnetblur101d", bottleneck(r101).d().with_aa("blur")},
      {"resnetaa34d", basic(r34).d().with_aa("avg")},
      {"resnetaa50", bottleneck(r34).with_aa("avg")},
      {"resnetaa50d", bottleneck(r34).d().with_aa("avg")},
      {"resnetaa101d", bottleneck(r101).d().with_aa("avg")},
      {"seresnetaa50d", bottleneck(r34).d().with_aa("avg").with_attn(se)},
      {"seresnextaa101d_32x8d", bottleneck(r101).groups(32, 8).d().with_aa("avg").with_attn(se)},
      {"seresnextaa201d_32x8d",
       bottleneck({3, 24, 36, 4}).groups(32, 8).deep(64).down_avg().with_aa("avg").with_attn(se)},
  };

  // SENet-154: 64-wide deep stem, 3x3 conv shortcuts, halved first bottleneck conv.
  auto senet = bottleneck(r152).groups(64, 4).deep(64).with_attn(se);
  senet.down_kernel_size = 3;
  senet.block_reduce_first = 2;
  models.emplace_back("senet154", senet);

  // ResNet-RS: 'D' stem and shortcut, a strided 3x3 conv instead of the stem max-pool, SE at 1/4.
  for (const auto& [depth, layers] : std::vector<std::pair<int, std::vector<int64_t>>>{
           {50, r34}, {101, r101}, {152, r152}, {200, r200}, {270, {4, 29, 53, 4}}, {350, {4, 36, 72, 4}},
           {420, {4, 44, 87, 4}}}) {
    auto cfg = bottleneck(layers).d().with_attn(se, 0.25);
    cfg.replace_stem_pool = true;
    models.emplace_back("resnetrs" + std::to_string(depth), cfg);
  }

  auto gn = bottleneck(r34);
  gn.group_norm = true;
  models.emplace_back("resnet50_gn", gn);

  auto pruned50 = bottleneck(r34).d().with_attn(eca);
  pruned50.pruned = &ecaresnet50d_pruned_widths();
  models.emplace_back("ecaresnet50d_pruned", pruned50);
  auto pruned101 = bottleneck(r101).d().with_attn(eca);
  pruned101.pruned = &ecaresnet101d_pruned_widths();
  models.emplace_back("ecaresnet101d_pruned", pruned101);

  // timm's tiny test network: mixed block types and narrow stages.
  auto test = basic({1, 1, 1, 1}).deep(16).down_avg();
  test.block = {BlockType::kBasic, BlockType::kBasic, BlockType::kBottleneck, BlockType::kBasic};
  test.channels = {32, 48, 48, 96};
  models.emplace_back("test_resnet", test);

  for (auto& [name, cfg] : models) {
    ModelEntry entry;
    entry.name = name;
    entry.family = "resnet";
    entry.create = [name = name, cfg = cfg](const ModelArgs& args) -> Backbone {
      return std::make_shared<ResNetImpl>(name, cfg, args);
    };
    if (name == "test_resnet") {
      entry.mean = {0.5, 0.5, 0.5};
      entry.std = {0.5, 0.5, 0.5};
    }
    register_model(std::move(entry));
  }
}

}  // namespace resnet
}  // namespace smp::timm
