// The models of timm's efficientnet.py: EfficientNet (B0-B8, L2, Lite, EdgeTPU, CondConv, X/H,
// pruned, GroupNorm/EvoNorm experiments), EfficientNet-V2, MixNet, MnasNet, MobileNet-V1/V2,
// FBNet-C, Single-Path NAS, TinyNet and MobileNet-EdgeTPU, all built by the EfficientNet builder.
#include <optional>
#include <set>

#include "timm/families.h"
#include "timm/models/efficientnet_builder.h"

namespace smp::timm {

namespace efficientnet {
namespace {

using effnet::DecodeOptions;
using effnet::ModelConfig;
using effnet::NormType;
using effnet::round_channels;
using effnet::round_fn;
using Arch = std::vector<std::vector<std::string>>;

constexpr double kTfBnEps = 1e-3;

// Model-level keyword arguments of timm's generator functions.
struct Kw {
  double bn_eps = 1e-5;
  std::string pad_type;
  NormType norm = NormType::kBatchNorm;
  int64_t norm_group_size = 0;
  std::string aa;
  bool gc = false;  // se_layer='gc'
  std::optional<int64_t> group_size;
  int64_t channel_divisor = 8;
  std::vector<effnet::PrunedBlock> pruned;
};

Kw tf() {
  Kw k;
  k.bn_eps = kTfBnEps;
  k.pad_type = "same";
  return k;
}

ModelConfig base(const Arch& arch, const DecodeOptions& decode, const Kw& kw, const std::string& act) {
  ModelConfig c;
  c.blocks = effnet::decode_arch_def(arch, decode);
  c.pad_type = kw.pad_type;
  c.norm.type = kw.norm;
  c.norm.eps = kw.bn_eps;
  c.norm.group_size = kw.norm_group_size;
  c.aa = kw.aa;
  c.se.global_context = kw.gc;
  c.act = act;
  c.pruned = kw.pruned;
  return c;
}

DecodeOptions depth(double multiplier, std::optional<int64_t> group_size = std::nullopt) {
  DecodeOptions d;
  d.depth_multiplier = {multiplier};
  d.group_size = group_size;
  return d;
}

ModelConfig mnasnet_a1(double mult, const Kw& kw = {}) {
  const Arch arch = {{"ds_r1_k3_s1_e1_c16_noskip"}, {"ir_r2_k3_s2_e6_c24"},         {"ir_r3_k5_s2_e3_c40_se0.25"},
                     {"ir_r4_k3_s2_e6_c80"},        {"ir_r2_k3_s1_e6_c112_se0.25"}, {"ir_r3_k5_s2_e6_c160_se0.25"},
                     {"ir_r1_k3_s1_e6_c320"}};
  auto c = base(arch, {}, kw, "relu");
  c.round_chs = round_fn(mult);
  return c;
}

ModelConfig mnasnet_b1(double mult, const Kw& kw = {}) {
  const Arch arch = {{"ds_r1_k3_s1_c16_noskip"},    {"ir_r3_k3_s2_e3_c24"}, {"ir_r3_k5_s2_e3_c40"},
                     {"ir_r3_k5_s2_e6_c80"},        {"ir_r2_k3_s1_e6_c96"}, {"ir_r4_k5_s2_e6_c192"},
                     {"ir_r1_k3_s1_e6_c320_noskip"}};
  auto c = base(arch, {}, kw, "relu");
  c.round_chs = round_fn(mult);
  return c;
}

ModelConfig mnasnet_small(double mult) {
  const Arch arch = {{"ds_r1_k3_s1_c8"},
                     {"ir_r1_k3_s2_e3_c16"},
                     {"ir_r2_k3_s2_e6_c16"},
                     {"ir_r4_k5_s2_e6_c32_se0.25"},
                     {"ir_r3_k3_s1_e6_c32_se0.25"},
                     {"ir_r3_k5_s2_e6_c88_se0.25"},
                     {"ir_r1_k3_s1_e6_c144"}};
  auto c = base(arch, {}, {}, "relu");
  c.stem_size = 8;
  c.round_chs = round_fn(mult);
  return c;
}

ModelConfig mobilenet_v1(double mult, bool head_conv) {
  const Arch arch = {{"dsa_r1_k3_s1_c64"},
                     {"dsa_r2_k3_s2_c128"},
                     {"dsa_r2_k3_s2_c256"},
                     {"dsa_r6_k3_s2_c512"},
                     {"dsa_r2_k3_s2_c1024"}};
  auto c = base(arch, {}, {}, "relu6");
  c.round_chs = round_fn(mult);
  c.num_features = head_conv ? std::max<int64_t>(1024, c.round_chs(1024)) : 0;
  return c;
}

ModelConfig mobilenet_v2(double mult, double depth_mult = 1.0, bool fix_stem_head = false) {
  const Arch arch = {{"ds_r1_k3_s1_c16"},    {"ir_r2_k3_s2_e6_c24"},  {"ir_r3_k3_s2_e6_c32"}, {"ir_r4_k3_s2_e6_c64"},
                     {"ir_r3_k3_s1_e6_c96"}, {"ir_r3_k3_s2_e6_c160"}, {"ir_r1_k3_s1_e6_c320"}};
  auto d = depth(depth_mult);
  d.fix_first_last = fix_stem_head;
  auto c = base(arch, d, {}, "relu6");
  c.round_chs = round_fn(mult);
  c.num_features = fix_stem_head ? 1280 : std::max<int64_t>(1280, c.round_chs(1280));
  c.fix_stem = fix_stem_head;
  return c;
}

ModelConfig fbnetc(double mult) {
  const Arch arch = {{"ir_r1_k3_s1_e1_c16"},
                     {"ir_r1_k3_s2_e6_c24", "ir_r2_k3_s1_e1_c24"},
                     {"ir_r1_k5_s2_e6_c32", "ir_r1_k5_s1_e3_c32", "ir_r1_k5_s1_e6_c32", "ir_r1_k3_s1_e6_c32"},
                     {"ir_r1_k5_s2_e6_c64", "ir_r1_k5_s1_e3_c64", "ir_r2_k5_s1_e6_c64"},
                     {"ir_r3_k5_s1_e6_c112", "ir_r1_k5_s1_e3_c112"},
                     {"ir_r4_k5_s2_e6_c184"},
                     {"ir_r1_k3_s1_e6_c352"}};
  auto c = base(arch, {}, {}, "relu");
  c.stem_size = 16;
  c.num_features = 1984;
  c.round_chs = round_fn(mult);
  return c;
}

ModelConfig spnasnet(double mult) {
  const Arch arch = {{"ds_r1_k3_s1_c16_noskip"},
                     {"ir_r3_k3_s2_e3_c24"},
                     {"ir_r1_k5_s2_e6_c40", "ir_r3_k3_s1_e3_c40"},
                     {"ir_r1_k5_s2_e6_c80", "ir_r3_k3_s1_e3_c80"},
                     {"ir_r1_k5_s1_e6_c96", "ir_r3_k5_s1_e3_c96"},
                     {"ir_r4_k5_s2_e6_c192"},
                     {"ir_r1_k3_s1_e6_c320_noskip"}};
  auto c = base(arch, {}, {}, "relu");
  c.round_chs = round_fn(mult);
  return c;
}

ModelConfig efficientnet(double mult, double depth_mult, const Kw& kw = {}) {
  const Arch arch = {{"ds_r1_k3_s1_e1_c16_se0.25"}, {"ir_r2_k3_s2_e6_c24_se0.25"},  {"ir_r2_k5_s2_e6_c40_se0.25"},
                     {"ir_r3_k3_s2_e6_c80_se0.25"}, {"ir_r3_k5_s1_e6_c112_se0.25"}, {"ir_r4_k5_s2_e6_c192_se0.25"},
                     {"ir_r1_k3_s1_e6_c320_se0.25"}};
  auto c = base(arch, depth(depth_mult, kw.group_size), kw, "swish");
  c.round_chs = round_fn(mult, kw.channel_divisor);
  c.num_features = c.round_chs(1280);
  return c;
}

ModelConfig efficientnet_edge(double mult, double depth_mult, const Kw& kw = {}) {
  const Arch arch = {{"er_r1_k3_s1_e4_c24_fc24_noskip"},
                     {"er_r2_k3_s2_e8_c32"},
                     {"er_r4_k3_s2_e8_c48"},
                     {"ir_r5_k5_s2_e8_c96"},
                     {"ir_r4_k5_s1_e8_c144"},
                     {"ir_r2_k5_s2_e8_c192"}};
  auto c = base(arch, depth(depth_mult), kw, "relu");
  c.round_chs = round_fn(mult);
  c.num_features = c.round_chs(1280);
  return c;
}

ModelConfig efficientnet_condconv(double mult, double depth_mult, int64_t experts_mult, const Kw& kw = {}) {
  const Arch arch = {{"ds_r1_k3_s1_e1_c16_se0.25"},      {"ir_r2_k3_s2_e6_c24_se0.25"},
                     {"ir_r2_k5_s2_e6_c40_se0.25"},      {"ir_r3_k3_s2_e6_c80_se0.25"},
                     {"ir_r3_k5_s1_e6_c112_se0.25_cc4"}, {"ir_r4_k5_s2_e6_c192_se0.25_cc4"},
                     {"ir_r1_k3_s1_e6_c320_se0.25_cc4"}};
  auto d = depth(depth_mult);
  d.experts_multiplier = experts_mult;
  auto c = base(arch, d, kw, "swish");
  c.round_chs = round_fn(mult);
  c.num_features = c.round_chs(1280);
  return c;
}

ModelConfig efficientnet_lite(double mult, double depth_mult, const Kw& kw = {}) {
  const Arch arch = {{"ds_r1_k3_s1_e1_c16"},  {"ir_r2_k3_s2_e6_c24"},  {"ir_r2_k5_s2_e6_c40"}, {"ir_r3_k3_s2_e6_c80"},
                     {"ir_r3_k5_s1_e6_c112"}, {"ir_r4_k5_s2_e6_c192"}, {"ir_r1_k3_s1_e6_c320"}};
  auto d = depth(depth_mult);
  d.fix_first_last = true;
  auto c = base(arch, d, kw, "relu6");
  c.num_features = 1280;
  c.fix_stem = true;
  c.round_chs = round_fn(mult);
  return c;
}

ModelConfig efficientnetv2_base(double mult, double depth_mult, const Kw& kw = {}) {
  const Arch arch = {{"cn_r1_k3_s1_e1_c16_skip"},   {"er_r2_k3_s2_e4_c32"},         {"er_r2_k3_s2_e4_c48"},
                     {"ir_r3_k3_s2_e4_c96_se0.25"}, {"ir_r5_k3_s1_e6_c112_se0.25"}, {"ir_r8_k3_s2_e6_c192_se0.25"}};
  auto c = base(arch, depth(depth_mult), kw, "silu");
  c.round_chs = round_fn(mult, 8, 0.0);
  c.num_features = c.round_chs(1280);
  return c;
}

ModelConfig efficientnetv2_s(double mult, std::vector<double> depth_mult, bool rw, const Kw& kw = {}) {
  Arch arch = {{"cn_r2_k3_s1_e1_c24_skip"},    {"er_r4_k3_s2_e4_c48"},         {"er_r4_k3_s2_e4_c64"},
               {"ir_r6_k3_s2_e4_c128_se0.25"}, {"ir_r9_k3_s1_e6_c160_se0.25"}, {"ir_r15_k3_s2_e6_c256_se0.25"}};
  int64_t num_features = 1280;
  if (rw) {
    arch.front() = {"er_r2_k3_s1_e1_c24"};
    arch.back() = {"ir_r15_k3_s2_e6_c272_se0.25"};
    num_features = 1792;
  }
  DecodeOptions d;
  d.depth_multiplier = std::move(depth_mult);
  auto c = base(arch, d, kw, "silu");
  c.stem_size = 24;
  c.round_chs = round_fn(mult);
  c.num_features = c.round_chs(static_cast<double>(num_features));
  return c;
}

ModelConfig efficientnetv2_large(const Arch& arch, int64_t stem, const Kw& kw) {
  auto c = base(arch, {}, kw, "silu");
  c.stem_size = stem;
  c.num_features = 1280;
  return c;
}

ModelConfig efficientnetv2_m(const Kw& kw = {}) {
  return efficientnetv2_large({{"cn_r3_k3_s1_e1_c24_skip"},
                               {"er_r5_k3_s2_e4_c48"},
                               {"er_r5_k3_s2_e4_c80"},
                               {"ir_r7_k3_s2_e4_c160_se0.25"},
                               {"ir_r14_k3_s1_e6_c176_se0.25"},
                               {"ir_r18_k3_s2_e6_c304_se0.25"},
                               {"ir_r5_k3_s1_e6_c512_se0.25"}},
                              24, kw);
}

ModelConfig efficientnetv2_l(const Kw& kw = {}) {
  return efficientnetv2_large({{"cn_r4_k3_s1_e1_c32_skip"},
                               {"er_r7_k3_s2_e4_c64"},
                               {"er_r7_k3_s2_e4_c96"},
                               {"ir_r10_k3_s2_e4_c192_se0.25"},
                               {"ir_r19_k3_s1_e6_c224_se0.25"},
                               {"ir_r25_k3_s2_e6_c384_se0.25"},
                               {"ir_r7_k3_s1_e6_c640_se0.25"}},
                              32, kw);
}

ModelConfig efficientnetv2_xl(const Kw& kw = {}) {
  return efficientnetv2_large({{"cn_r4_k3_s1_e1_c32_skip"},
                               {"er_r8_k3_s2_e4_c64"},
                               {"er_r8_k3_s2_e4_c96"},
                               {"ir_r16_k3_s2_e4_c192_se0.25"},
                               {"ir_r24_k3_s1_e6_c256_se0.25"},
                               {"ir_r32_k3_s2_e6_c512_se0.25"},
                               {"ir_r8_k3_s1_e6_c640_se0.25"}},
                              32, kw);
}

ModelConfig efficientnet_x(double mult, double depth_mult, int version) {
  const std::string e = version == 1 ? "6" : "4";
  const Arch arch = {{"ds_r1_k3_s1_e1_c16_se0.25_d1"},
                     {"er_r2_k3_s2_e" + e + "_c24_se0.25_nre"},
                     {"er_r2_k5_s2_e" + e + "_c40_se0.25_nre"},
                     {"ir_r3_k3_s2_e" + e + "_c80_se0.25"},
                     {"ir_r3_k5_s1_e6_c112_se0.25"},
                     {"ir_r4_k5_s2_e6_c192_se0.25"},
                     {"ir_r1_k3_s1_e6_c320_se0.25"}};
  auto c = base(arch, depth(depth_mult), {}, "silu");
  c.round_chs = round_fn(mult);
  c.num_features = c.round_chs(1280);
  return c;
}

ModelConfig mixnet_s(double mult, const Kw& kw = {}) {
  const Arch arch = {{"ds_r1_k3_s1_e1_c16"},
                     {"ir_r1_k3_a1.1_p1.1_s2_e6_c24", "ir_r1_k3_a1.1_p1.1_s1_e3_c24"},
                     {"ir_r1_k3.5.7_s2_e6_c40_se0.5_nsw", "ir_r3_k3.5_a1.1_p1.1_s1_e6_c40_se0.5_nsw"},
                     {"ir_r1_k3.5.7_p1.1_s2_e6_c80_se0.25_nsw", "ir_r2_k3.5_p1.1_s1_e6_c80_se0.25_nsw"},
                     {"ir_r1_k3.5.7_a1.1_p1.1_s1_e6_c120_se0.5_nsw", "ir_r2_k3.5.7.9_a1.1_p1.1_s1_e3_c120_se0.5_nsw"},
                     {"ir_r1_k3.5.7.9.11_s2_e6_c200_se0.5_nsw", "ir_r2_k3.5.7.9_p1.1_s1_e6_c200_se0.5_nsw"}};
  auto c = base(arch, {}, kw, "relu");
  c.num_features = 1536;
  c.stem_size = 16;
  c.round_chs = round_fn(mult);
  return c;
}

ModelConfig mixnet_m(double mult, double depth_mult = 1.0, const Kw& kw = {}) {
  const Arch arch = {{"ds_r1_k3_s1_e1_c24"},
                     {"ir_r1_k3.5.7_a1.1_p1.1_s2_e6_c32", "ir_r1_k3_a1.1_p1.1_s1_e3_c32"},
                     {"ir_r1_k3.5.7.9_s2_e6_c40_se0.5_nsw", "ir_r3_k3.5_a1.1_p1.1_s1_e6_c40_se0.5_nsw"},
                     {"ir_r1_k3.5.7_s2_e6_c80_se0.25_nsw", "ir_r3_k3.5.7.9_a1.1_p1.1_s1_e6_c80_se0.25_nsw"},
                     {"ir_r1_k3_s1_e6_c120_se0.5_nsw", "ir_r3_k3.5.7.9_a1.1_p1.1_s1_e3_c120_se0.5_nsw"},
                     {"ir_r1_k3.5.7.9_s2_e6_c200_se0.5_nsw", "ir_r3_k3.5.7.9_p1.1_s1_e6_c200_se0.5_nsw"}};
  auto d = depth(depth_mult);
  d.depth_round = true;
  auto c = base(arch, d, kw, "relu");
  c.num_features = 1536;
  c.stem_size = 24;
  c.round_chs = round_fn(mult);
  return c;
}

ModelConfig tinynet(double width, double depth_mult) {
  const Arch arch = {{"ds_r1_k3_s1_e1_c16_se0.25"}, {"ir_r2_k3_s2_e6_c24_se0.25"},  {"ir_r2_k5_s2_e6_c40_se0.25"},
                     {"ir_r3_k3_s2_e6_c80_se0.25"}, {"ir_r3_k5_s1_e6_c112_se0.25"}, {"ir_r4_k5_s2_e6_c192_se0.25"},
                     {"ir_r1_k3_s1_e6_c320_se0.25"}};
  auto d = depth(depth_mult);
  d.depth_round = true;
  auto c = base(arch, d, {}, "swish");
  c.num_features = std::max<int64_t>(1280, round_channels(1280, width));
  c.fix_stem = true;
  c.round_chs = round_fn(width);
  return c;
}

ModelConfig mobilenet_edgetpu(const std::string& variant) {
  Arch arch;
  int64_t stem = 32, stem_kernel = 3, num_features = 1280;
  if (variant.find("edgetpu_v2") != std::string::npos) {
    stem = 64;
    stem_kernel = 5;
    int64_t gs = 64;
    std::vector<int64_t> chs;
    if (variant.find("edgetpu_v2_xs") != std::string::npos) {
      stem = 32;
      stem_kernel = 3;
      chs = {16, 32, 48, 96, 144, 160, 192};
    } else if (variant.find("edgetpu_v2_s") != std::string::npos) {
      chs = {24, 48, 64, 128, 160, 192, 256};
    } else if (variant.find("edgetpu_v2_m") != std::string::npos) {
      chs = {32, 64, 80, 160, 192, 240, 320};
      num_features = 1344;
    } else {
      stem_kernel = 7;
      gs = 128;
      chs = {32, 64, 96, 192, 240, 256, 384};
      num_features = 1408;
    }
    auto ch = [&](size_t i) { return "_c" + std::to_string(chs[i]); };
    const std::string g = "_gs" + std::to_string(gs);
    arch = {{"cn_r1_k1_s1" + ch(0)},
            {"er_r1_k3_s2_e8" + ch(1), "er_r1_k3_s1_e4" + g + ch(1)},
            {"er_r1_k3_s2_e8" + ch(2), "er_r1_k3_s1_e4" + g + ch(2), "er_r1_k3_s1_e4" + ch(2),
             "er_r1_k3_s1_e4" + g + ch(2)},
            {"er_r1_k3_s2_e8" + ch(3), "ir_r3_k3_s1_e4" + ch(3)},
            {"ir_r1_k3_s1_e8" + ch(4), "ir_r3_k3_s1_e4" + ch(4)},
            {"ir_r1_k3_s2_e8" + ch(5), "ir_r3_k3_s1_e4" + ch(5)},
            {"ir_r1_k3_s1_e8" + ch(6)}};
  } else {
    arch = {{"cn_r1_k1_s1_c16"},
            {"er_r1_k3_s2_e8_c32", "er_r3_k3_s1_e4_c32"},
            {"er_r1_k3_s2_e8_c48", "er_r3_k3_s1_e4_c48"},
            {"ir_r1_k3_s2_e8_c96", "ir_r3_k3_s1_e4_c96"},
            {"ir_r1_k3_s1_e8_c96_noskip", "ir_r3_k3_s1_e4_c96"},
            {"ir_r1_k5_s2_e8_c160", "ir_r3_k5_s1_e4_c160"},
            {"ir_r1_k3_s1_e8_c192"}};
  }
  auto c = base(arch, {}, {}, "relu");
  c.stem_size = stem;
  c.stem_kernel_size = stem_kernel;
  c.num_features = num_features;
  return c;
}

ModelConfig test_efficientnet(const Kw& kw = {}) {
  const Arch arch = {{"cn_r1_k3_s1_e1_c16_skip"},
                     {"er_r1_k3_s2_e4_c24"},
                     {"er_r1_k3_s2_e4_c32"},
                     {"ir_r1_k3_s2_e4_c48_se0.25"},
                     {"ir_r1_k3_s2_e4_c64_se0.25"}};
  auto c = base(arch, {}, kw, "silu");
  c.round_chs = round_fn(1.0, 8, 0.0);
  c.num_features = c.round_chs(256);
  c.stem_size = 24;
  return c;
}

Kw norm(NormType type, int64_t group_size = 0, std::optional<int64_t> conv_group_size = std::nullopt,
        int64_t divisor = 8) {
  Kw k;
  k.norm = type;
  k.norm_group_size = group_size;
  k.group_size = conv_group_size;
  k.channel_divisor = divisor;
  return k;
}

Kw pruned_tf(std::vector<effnet::PrunedBlock> widths) {
  auto k = tf();
  k.pruned = std::move(widths);
  return k;
}

// Widths that differ from the unpruned model in timm's _pruned/efficientnet_b*_pruned.txt:
// {stage, block, expanded width, SE width, output width}.
const std::vector<effnet::PrunedBlock>& b1_pruned() {
  static const std::vector<effnet::PrunedBlock> w = {
      {1, 0, 48, 4, 12},    {1, 1, 62, 6, 12},    {1, 2, 48, 6, 12},    {2, 0, 70, 6, 35},    {2, 1, 61, 10, 35},
      {2, 2, 51, 10, 35},   {3, 0, 175, 10, 74},  {3, 1, 188, 20, 74},  {3, 2, 137, 20, 74},  {3, 3, 164, 20, 74},
      {4, 0, 399, 20, 67},  {4, 1, 201, 28, 67},  {4, 2, 160, 28, 67},  {4, 3, 213, 28, 67},  {5, 0, 637, 27, 192},
      {5, 1, 806, 48, 192}, {5, 2, 798, 48, 192}, {5, 3, 891, 48, 192}, {5, 4, 990, 48, 192}, {6, 1, 1912, 80, 320}};
  return w;
}

const std::vector<effnet::PrunedBlock>& b2_pruned() {
  static const std::vector<effnet::PrunedBlock> w = {
      {1, 0, 54, 4, 17},     {1, 1, 69, 6, 17},     {1, 2, 61, 6, 17},     {2, 0, 86, 6, 42},    {2, 1, 72, 12, 42},
      {2, 2, 98, 12, 42},    {3, 0, 245, 12, 85},   {3, 1, 274, 22, 85},   {3, 2, 254, 22, 85},  {3, 3, 292, 22, 85},
      {4, 0, 502, 22, 116},  {4, 1, 315, 30, 116},  {4, 2, 354, 30, 116},  {4, 3, 443, 30, 116}, {5, 0, 719, 30, 208},
      {5, 1, 1148, 52, 208}, {5, 2, 1160, 52, 208}, {5, 3, 1182, 52, 208}, {5, 4, 1228, 52, 208}};
  return w;
}

const std::vector<effnet::PrunedBlock>& b3_pruned() {
  static const std::vector<effnet::PrunedBlock> w = {
      {1, 0, 27, 6, 12},     {1, 1, 49, 8, 12},     {1, 2, 48, 8, 12},     {2, 0, 83, 8, 40},    {2, 1, 90, 12, 40},
      {2, 2, 85, 12, 40},    {3, 0, 215, 12, 93},   {3, 1, 261, 24, 93},   {3, 2, 219, 24, 93},  {3, 3, 254, 24, 93},
      {3, 4, 236, 24, 93},   {4, 0, 480, 24, 120},  {4, 1, 235, 34, 120},  {4, 2, 217, 34, 120}, {4, 3, 226, 33, 120},
      {4, 4, 340, 34, 120},  {5, 0, 802, 34, 232},  {5, 1, 1030, 58, 232}, {5, 2, 924, 58, 232}, {5, 3, 1016, 58, 232},
      {5, 4, 1130, 58, 232}, {5, 5, 1266, 58, 232}, {6, 1, 2301, 96, 384}};
  return w;
}

}  // namespace

void register_family() {
  const std::vector<double> inception = {0.5, 0.5, 0.5};
  std::vector<std::pair<std::string, ModelConfig>> models = {
      {"mnasnet_050", mnasnet_b1(0.5)},
      {"mnasnet_075", mnasnet_b1(0.75)},
      {"mnasnet_100", mnasnet_b1(1.0)},
      {"mnasnet_140", mnasnet_b1(1.4)},
      {"semnasnet_050", mnasnet_a1(0.5)},
      {"semnasnet_075", mnasnet_a1(0.75)},
      {"semnasnet_100", mnasnet_a1(1.0)},
      {"semnasnet_140", mnasnet_a1(1.4)},
      {"mnasnet_small", mnasnet_small(1.0)},
      {"mobilenetv1_100", mobilenet_v1(1.0, false)},
      {"mobilenetv1_100h", mobilenet_v1(1.0, true)},
      {"mobilenetv1_125", mobilenet_v1(1.25, false)},
      {"mobilenetv2_035", mobilenet_v2(0.35)},
      {"mobilenetv2_050", mobilenet_v2(0.5)},
      {"mobilenetv2_075", mobilenet_v2(0.75)},
      {"mobilenetv2_100", mobilenet_v2(1.0)},
      {"mobilenetv2_140", mobilenet_v2(1.4)},
      {"mobilenetv2_110d", mobilenet_v2(1.1, 1.2, true)},
      {"mobilenetv2_120d", mobilenet_v2(1.2, 1.4, true)},
      {"fbnetc_100", fbnetc(1.0)},
      {"spnasnet_100", spnasnet(1.0)},
      {"efficientnet_b0", efficientnet(1.0, 1.0)},
      {"efficientnet_b1", efficientnet(1.0, 1.1)},
      {"efficientnet_b2", efficientnet(1.1, 1.2)},
      {"efficientnet_b3", efficientnet(1.2, 1.4)},
      {"efficientnet_b4", efficientnet(1.4, 1.8)},
      {"efficientnet_b5", efficientnet(1.6, 2.2)},
      {"efficientnet_b6", efficientnet(1.8, 2.6)},
      {"efficientnet_b7", efficientnet(2.0, 3.1)},
      {"efficientnet_b8", efficientnet(2.2, 3.6)},
      {"efficientnet_l2", efficientnet(4.3, 5.3)},
      {"efficientnet_b0_gn", efficientnet(1.0, 1.0, norm(NormType::kGroupNorm, 8))},
      {"efficientnet_b0_g8_gn", efficientnet(1.0, 1.0, norm(NormType::kGroupNorm, 8, 8))},
      // timm leaves this one's EvoNorm commented out: grouped convs and BatchNorm.
      {"efficientnet_b0_g16_evos", efficientnet(1.0, 1.0, norm(NormType::kBatchNorm, 0, 16, 16))},
      {"efficientnet_b3_gn", efficientnet(1.2, 1.4, norm(NormType::kGroupNorm, 16, std::nullopt, 16))},
      {"efficientnet_b3_g8_gn", efficientnet(1.2, 1.4, norm(NormType::kGroupNorm, 16, 8, 16))},
      {"efficientnet_blur_b0",
       [] {
         Kw k;
         k.aa = "blurpc";
         return efficientnet(1.0, 1.0, k);
       }()},
      {"efficientnet_es", efficientnet_edge(1.0, 1.0)},
      {"efficientnet_es_pruned", efficientnet_edge(1.0, 1.0)},
      {"efficientnet_em", efficientnet_edge(1.0, 1.1)},
      {"efficientnet_el", efficientnet_edge(1.2, 1.4)},
      {"efficientnet_el_pruned", efficientnet_edge(1.2, 1.4)},
      {"efficientnet_cc_b0_4e", efficientnet_condconv(1.0, 1.0, 1)},
      {"efficientnet_cc_b0_8e", efficientnet_condconv(1.0, 1.0, 2)},
      {"efficientnet_cc_b1_8e", efficientnet_condconv(1.0, 1.1, 2)},
      {"efficientnet_lite0", efficientnet_lite(1.0, 1.0)},
      {"efficientnet_lite1", efficientnet_lite(1.0, 1.1)},
      {"efficientnet_lite2", efficientnet_lite(1.1, 1.2)},
      {"efficientnet_lite3", efficientnet_lite(1.2, 1.4)},
      {"efficientnet_lite4", efficientnet_lite(1.4, 1.8)},
      {"efficientnet_b1_pruned", efficientnet(1.0, 1.1, pruned_tf(b1_pruned()))},
      {"efficientnet_b2_pruned", efficientnet(1.1, 1.2, pruned_tf(b2_pruned()))},
      {"efficientnet_b3_pruned", efficientnet(1.2, 1.4, pruned_tf(b3_pruned()))},
      {"efficientnetv2_rw_t", efficientnetv2_s(0.8, {0.9}, false)},
      {"gc_efficientnetv2_rw_t",
       [] {
         Kw k;
         k.gc = true;
         return efficientnetv2_s(0.8, {0.9}, false, k);
       }()},
      {"efficientnetv2_rw_s", efficientnetv2_s(1.0, {1.0}, true)},
      {"efficientnetv2_rw_m", efficientnetv2_s(1.2, {1.2, 1.2, 1.2, 1.2, 1.6, 1.6}, true)},
      {"efficientnetv2_s", efficientnetv2_s(1.0, {1.0}, false)},
      {"efficientnetv2_m", efficientnetv2_m()},
      {"efficientnetv2_l", efficientnetv2_l()},
      {"efficientnetv2_xl", efficientnetv2_xl()},
      {"tf_efficientnet_b0", efficientnet(1.0, 1.0, tf())},
      {"tf_efficientnet_b1", efficientnet(1.0, 1.1, tf())},
      {"tf_efficientnet_b2", efficientnet(1.1, 1.2, tf())},
      {"tf_efficientnet_b3", efficientnet(1.2, 1.4, tf())},
      {"tf_efficientnet_b4", efficientnet(1.4, 1.8, tf())},
      {"tf_efficientnet_b5", efficientnet(1.6, 2.2, tf())},
      {"tf_efficientnet_b6", efficientnet(1.8, 2.6, tf())},
      {"tf_efficientnet_b7", efficientnet(2.0, 3.1, tf())},
      {"tf_efficientnet_b8", efficientnet(2.2, 3.6, tf())},
      {"tf_efficientnet_l2", efficientnet(4.3, 5.3, tf())},
      {"tf_efficientnet_es", efficientnet_edge(1.0, 1.0, tf())},
      {"tf_efficientnet_em", efficientnet_edge(1.0, 1.1, tf())},
      {"tf_efficientnet_el", efficientnet_edge(1.2, 1.4, tf())},
      {"tf_efficientnet_cc_b0_4e", efficientnet_condconv(1.0, 1.0, 1, tf())},
      {"tf_efficientnet_cc_b0_8e", efficientnet_condconv(1.0, 1.0, 2, tf())},
      {"tf_efficientnet_cc_b1_8e", efficientnet_condconv(1.0, 1.1, 2, tf())},
      {"tf_efficientnet_lite0", efficientnet_lite(1.0, 1.0, tf())},
      {"tf_efficientnet_lite1", efficientnet_lite(1.0, 1.1, tf())},
      {"tf_efficientnet_lite2", efficientnet_lite(1.1, 1.2, tf())},
      {"tf_efficientnet_lite3", efficientnet_lite(1.2, 1.4, tf())},
      {"tf_efficientnet_lite4", efficientnet_lite(1.4, 1.8, tf())},
      {"tf_efficientnetv2_s", efficientnetv2_s(1.0, {1.0}, false, tf())},
      {"tf_efficientnetv2_m", efficientnetv2_m(tf())},
      {"tf_efficientnetv2_l", efficientnetv2_l(tf())},
      {"tf_efficientnetv2_xl", efficientnetv2_xl(tf())},
      {"tf_efficientnetv2_b0", efficientnetv2_base(1.0, 1.0, tf())},
      {"tf_efficientnetv2_b1", efficientnetv2_base(1.0, 1.1, tf())},
      {"tf_efficientnetv2_b2", efficientnetv2_base(1.1, 1.2, tf())},
      {"tf_efficientnetv2_b3", efficientnetv2_base(1.2, 1.4, tf())},
      {"efficientnet_x_b3", efficientnet_x(1.2, 1.4, 1)},
      {"efficientnet_x_b5", efficientnet_x(1.6, 2.2, 1)},
      {"efficientnet_h_b5", efficientnet_x(1.92, 2.2, 2)},
      {"mixnet_s", mixnet_s(1.0)},
      {"mixnet_m", mixnet_m(1.0)},
      {"mixnet_l", mixnet_m(1.3)},
      {"mixnet_xl", mixnet_m(1.6, 1.2)},
      {"mixnet_xxl", mixnet_m(2.4, 1.3)},
      {"tf_mixnet_s", mixnet_s(1.0, tf())},
      {"tf_mixnet_m", mixnet_m(1.0, 1.0, tf())},
      {"tf_mixnet_l", mixnet_m(1.3, 1.0, tf())},
      {"tinynet_a", tinynet(1.0, 1.2)},
      {"tinynet_b", tinynet(0.75, 1.1)},
      {"tinynet_c", tinynet(0.54, 0.85)},
      {"tinynet_d", tinynet(0.54, 0.695)},
      {"tinynet_e", tinynet(0.51, 0.6)},
      {"mobilenet_edgetpu_100", mobilenet_edgetpu("mobilenet_edgetpu_100")},
      {"mobilenet_edgetpu_v2_xs", mobilenet_edgetpu("mobilenet_edgetpu_v2_xs")},
      {"mobilenet_edgetpu_v2_s", mobilenet_edgetpu("mobilenet_edgetpu_v2_s")},
      {"mobilenet_edgetpu_v2_m", mobilenet_edgetpu("mobilenet_edgetpu_v2_m")},
      {"mobilenet_edgetpu_v2_l", mobilenet_edgetpu("mobilenet_edgetpu_v2_l")},
      {"test_efficientnet", test_efficientnet()},
      {"test_efficientnet_gn", test_efficientnet(norm(NormType::kGroupNorm, 8))},
      {"test_efficientnet_ln", test_efficientnet(norm(NormType::kLayerNorm))},
      {"test_efficientnet_evos", test_efficientnet(norm(NormType::kEvoNormS0, 8))},
  };

  // Default pretrained tags whose preprocessing is not ImageNet's mean/std (timm's pretrained_cfg).
  const std::set<std::string> inception_norm = {
      "efficientnet_b1",          "efficientnet_b1_pruned",   "efficientnet_b2_pruned", "efficientnet_b3_pruned",
      "mobilenet_edgetpu_v2_m",   "mobilenetv1_100",          "mobilenetv1_100h",       "mobilenetv1_125",
      "test_efficientnet_evos",   "test_efficientnet_gn",     "tf_efficientnet_b8",     "tf_efficientnet_cc_b0_4e",
      "tf_efficientnet_cc_b0_8e", "tf_efficientnet_cc_b1_8e", "tf_efficientnet_el",     "tf_efficientnet_em",
      "tf_efficientnet_es",       "tf_efficientnet_lite0",    "tf_efficientnet_lite1",  "tf_efficientnet_lite2",
      "tf_efficientnet_lite3",    "tf_efficientnet_lite4",    "tf_efficientnetv2_b3",   "tf_efficientnetv2_l",
      "tf_efficientnetv2_m",      "tf_efficientnetv2_s",      "tf_efficientnetv2_xl"};

  for (auto& [name, cfg] : models) {
    ModelEntry entry;
    entry.name = name;
    entry.family = "efficientnet";
    entry.create = [name = name, cfg = cfg](const ModelArgs& args) -> Backbone {
      return effnet::create_efficientnet(name, cfg, args);
    };
    if (inception_norm.count(name)) entry.mean = entry.std = inception;
    register_model(std::move(entry));
  }
}

}  // namespace efficientnet
}  // namespace smp::timm
