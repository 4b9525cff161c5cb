// The models of timm's mobilenetv3.py: MobileNet-V3 (large/small, minimal, TF ports), FBNet-V3,
// LCNet and MobileNet-V4 (conv and hybrid), all built by the EfficientNet builder with the
// MobileNet-V3 "efficient head" (pooling before the head conv).
#include <set>

#include "timm/families.h"
#include "timm/models/efficientnet_builder.h"

namespace smp::timm {

namespace mobilenetv3 {
namespace {

using effnet::DecodeOptions;
using effnet::HeadType;
using effnet::ModelConfig;
using effnet::round_fn;
using Arch = std::vector<std::vector<std::string>>;

constexpr double kTfBnEps = 1e-3;

ModelConfig mnv3_base(const Arch& arch, const DecodeOptions& decode, const std::string& act) {
  ModelConfig c;
  c.blocks = effnet::decode_arch_def(arch, decode);
  c.head = HeadType::kMobileNetV3;
  c.stem_size = 16;
  c.se_from_exp = true;
  c.act = act;
  return c;
}

struct Tf {
  bool bn_eps = false;  // TensorFlow's BatchNorm epsilon
  bool same_pad = false;
};

void apply(ModelConfig& c, Tf tf) {
  if (tf.bn_eps) c.norm.eps = kTfBnEps;
  if (tf.same_pad) c.pad_type = "same";
}

ModelConfig mobilenet_v3_rw(double mult) {
  const Arch arch = {{"ds_r1_k3_s1_e1_c16_nre_noskip"},
                     {"ir_r1_k3_s2_e4_c24_nre", "ir_r1_k3_s1_e3_c24_nre"},
                     {"ir_r3_k5_s2_e3_c40_se0.25_nre"},
                     {"ir_r1_k3_s2_e6_c80", "ir_r1_k3_s1_e2.5_c80", "ir_r2_k3_s1_e2.3_c80"},
                     {"ir_r2_k3_s1_e6_c112_se0.25"},
                     {"ir_r3_k5_s2_e6_c160_se0.25"},
                     {"cn_r1_k1_s1_c960"}};
  auto c = mnv3_base(arch, {}, "hard_swish");
  c.head_bias = false;
  c.round_chs = round_fn(mult);
  c.se.gate = "hard_sigmoid";
  apply(c, {true, false});
  return c;
}

ModelConfig mobilenet_v3(const std::string& variant, double mult, double depth_mult = 1.0, Tf tf = {}) {
  const bool small = variant.find("small") != std::string::npos;
  const bool minimal = variant.find("minimal") != std::string::npos;
  Arch arch;
  std::string act = minimal ? "relu" : "hard_swish";
  if (small && minimal) {
    arch = {{"ds_r1_k3_s2_e1_c16"},
            {"ir_r1_k3_s2_e4.5_c24", "ir_r1_k3_s1_e3.67_c24"},
            {"ir_r1_k3_s2_e4_c40", "ir_r2_k3_s1_e6_c40"},
            {"ir_r2_k3_s1_e3_c48"},
            {"ir_r3_k3_s2_e6_c96"},
            {"cn_r1_k1_s1_c576"}};
  } else if (small) {
    arch = {{"ds_r1_k3_s2_e1_c16_se0.25_nre"},
            {"ir_r1_k3_s2_e4.5_c24_nre", "ir_r1_k3_s1_e3.67_c24_nre"},
            {"ir_r1_k5_s2_e4_c40_se0.25", "ir_r2_k5_s1_e6_c40_se0.25"},
            {"ir_r2_k5_s1_e3_c48_se0.25"},
            {"ir_r3_k5_s2_e6_c96_se0.25"},
            {"cn_r1_k1_s1_c576"}};
  } else if (minimal) {
    arch = {{"ds_r1_k3_s1_e1_c16"},  {"ir_r1_k3_s2_e4_c24", "ir_r1_k3_s1_e3_c24"},
            {"ir_r3_k3_s2_e3_c40"},  {"ir_r1_k3_s2_e6_c80", "ir_r1_k3_s1_e2.5_c80", "ir_r2_k3_s1_e2.3_c80"},
            {"ir_r2_k3_s1_e6_c112"}, {"ir_r3_k3_s2_e6_c160"},
            {"cn_r1_k1_s1_c960"}};
  } else {
    arch = {{"ds_r1_k3_s1_e1_c16_nre"},
            {"ir_r1_k3_s2_e4_c24_nre", "ir_r1_k3_s1_e3_c24_nre"},
            {"ir_r3_k5_s2_e3_c40_se0.25_nre"},
            {"ir_r1_k3_s2_e6_c80", "ir_r1_k3_s1_e2.5_c80", "ir_r2_k3_s1_e2.3_c80"},
            {"ir_r2_k3_s1_e6_c112_se0.25"},
            {"ir_r3_k5_s2_e6_c160_se0.25"},
            {"cn_r1_k1_s1_c960"}};
  }
  DecodeOptions d;
  d.depth_multiplier = {depth_mult};
  auto c = mnv3_base(arch, d, act);
  c.num_features = small ? 1024 : 1280;
  c.fix_stem = mult < 0.75;
  c.round_chs = round_fn(mult);
  c.se.gate = "hard_sigmoid";
  c.se.force_act = "relu";
  c.se.rd_round = round_fn();
  apply(c, tf);
  return c;
}

ModelConfig fbnetv3(char variant) {
  Arch arch;
  int64_t stem = 16;
  if (variant == 'b') {
    arch = {{"ds_r2_k3_s1_e1_c16"},
            {"ir_r1_k5_s2_e4_c24", "ir_r3_k5_s1_e2_c24"},
            {"ir_r1_k5_s2_e5_c40_se0.25", "ir_r4_k5_s1_e3_c40_se0.25"},
            {"ir_r1_k5_s2_e5_c72", "ir_r4_k3_s1_e3_c72"},
            {"ir_r1_k3_s1_e5_c120_se0.25", "ir_r5_k5_s1_e3_c120_se0.25"},
            {"ir_r1_k3_s2_e6_c184_se0.25", "ir_r5_k5_s1_e4_c184_se0.25", "ir_r1_k5_s1_e6_c224_se0.25"},
            {"cn_r1_k1_s1_c1344"}};
  } else if (variant == 'd') {
    stem = 24;
    arch = {{"ds_r2_k3_s1_e1_c16"},
            {"ir_r1_k3_s2_e5_c24", "ir_r5_k3_s1_e2_c24"},
            {"ir_r1_k5_s2_e4_c40_se0.25", "ir_r4_k3_s1_e3_c40_se0.25"},
            {"ir_r1_k3_s2_e5_c72", "ir_r4_k3_s1_e3_c72"},
            {"ir_r1_k3_s1_e5_c128_se0.25", "ir_r6_k5_s1_e3_c128_se0.25"},
            {"ir_r1_k3_s2_e6_c208_se0.25", "ir_r5_k5_s1_e5_c208_se0.25", "ir_r1_k5_s1_e6_c240_se0.25"},
            {"cn_r1_k1_s1_c1440"}};
  } else {
    stem = 32;
    arch = {{"ds_r3_k3_s1_e1_c24"},
            {"ir_r1_k5_s2_e4_c40", "ir_r4_k5_s1_e2_c40"},
            {"ir_r1_k5_s2_e4_c56_se0.25", "ir_r4_k5_s1_e3_c56_se0.25"},
            {"ir_r1_k5_s2_e5_c104", "ir_r4_k3_s1_e3_c104"},
            {"ir_r1_k3_s1_e5_c160_se0.25", "ir_r8_k5_s1_e3_c160_se0.25"},
            {"ir_r1_k3_s2_e6_c264_se0.25", "ir_r6_k5_s1_e5_c264_se0.25", "ir_r2_k5_s1_e6_c288_se0.25"},
            {"cn_r1_k1_s1_c1728"}};
  }
  auto c = mnv3_base(arch, {}, "hard_swish");
  c.round_chs = round_fn(1.0, 8, 0.95);
  c.se.gate = "hard_sigmoid";
  c.se.rd_round = c.round_chs;
  c.num_features = 1984;
  c.head_bias = false;
  c.stem_size = stem;
  c.se_from_exp = false;
  return c;
}

ModelConfig lcnet(double mult) {
  const Arch arch = {{"dsa_r1_k3_s1_c32"},  {"dsa_r2_k3_s2_c64"},
                     {"dsa_r2_k3_s2_c128"}, {"dsa_r1_k3_s2_c256", "dsa_r1_k5_s1_c256"},
                     {"dsa_r4_k5_s1_c256"}, {"dsa_r2_k5_s2_c512_se0.25"}};
  auto c = mnv3_base(arch, {}, "hard_swish");
  c.round_chs = round_fn(mult);
  c.se.gate = "hard_sigmoid";
  c.se.force_act = "relu";
  c.num_features = 1280;
  return c;
}

ModelConfig mobilenet_v4(const std::string& variant, double mult, const std::string& aa = "") {
  const bool hybrid = variant.find("hybrid") != std::string::npos;
  const bool medium = variant.find("medium") != std::string::npos;
  const bool large = variant.find("large") != std::string::npos;
  Arch arch;
  int64_t stem = 32;
  std::string act = "relu";
  if (hybrid && medium) {
    arch = {
        {"er_r1_k3_s2_e4_c48"},
        {"uir_r1_a3_k5_s2_e4_c80", "uir_r1_a3_k3_s1_e2_c80"},
        {"uir_r1_a3_k5_s2_e6_c160", "uir_r1_a0_k0_s1_e2_c160", "uir_r1_a3_k3_s1_e4_c160", "uir_r1_a3_k5_s1_e4_c160",
         "mqa_r1_k3_h4_s1_v2_d64_c160", "uir_r1_a3_k3_s1_e4_c160", "mqa_r1_k3_h4_s1_v2_d64_c160",
         "uir_r1_a3_k0_s1_e4_c160", "mqa_r1_k3_h4_s1_v2_d64_c160", "uir_r1_a3_k3_s1_e4_c160",
         "mqa_r1_k3_h4_s1_v2_d64_c160", "uir_r1_a3_k0_s1_e4_c160"},
        {"uir_r1_a5_k5_s2_e6_c256", "uir_r1_a5_k5_s1_e4_c256", "uir_r2_a3_k5_s1_e4_c256", "uir_r1_a0_k0_s1_e2_c256",
         "uir_r1_a3_k5_s1_e2_c256", "uir_r1_a0_k0_s1_e2_c256", "uir_r1_a0_k0_s1_e4_c256", "mqa_r1_k3_h4_s1_d64_c256",
         "uir_r1_a3_k0_s1_e4_c256", "mqa_r1_k3_h4_s1_d64_c256", "uir_r1_a5_k5_s1_e4_c256", "mqa_r1_k3_h4_s1_d64_c256",
         "uir_r1_a5_k0_s1_e4_c256", "mqa_r1_k3_h4_s1_d64_c256", "uir_r1_a5_k0_s1_e4_c256"},
        {"cn_r1_k1_s1_c960"}};
  } else if (hybrid && large) {
    stem = 24;
    act = "gelu";
    arch = {
        {"er_r1_k3_s2_e4_c48"},
        {"uir_r1_a3_k5_s2_e4_c96", "uir_r1_a3_k3_s1_e4_c96"},
        {"uir_r1_a3_k5_s2_e4_c192", "uir_r3_a3_k3_s1_e4_c192", "uir_r1_a3_k5_s1_e4_c192", "uir_r2_a5_k3_s1_e4_c192",
         "mqa_r1_k3_h8_s1_v2_d48_c192", "uir_r1_a5_k3_s1_e4_c192", "mqa_r1_k3_h8_s1_v2_d48_c192",
         "uir_r1_a5_k3_s1_e4_c192", "mqa_r1_k3_h8_s1_v2_d48_c192", "uir_r1_a5_k3_s1_e4_c192",
         "mqa_r1_k3_h8_s1_v2_d48_c192", "uir_r1_a3_k0_s1_e4_c192"},
        {"uir_r4_a5_k5_s2_e4_c512", "uir_r1_a5_k0_s1_e4_c512", "uir_r1_a5_k3_s1_e4_c512", "uir_r2_a5_k0_s1_e4_c512",
         "uir_r1_a5_k3_s1_e4_c512", "uir_r1_a5_k5_s1_e4_c512", "mqa_r1_k3_h8_s1_d64_c512", "uir_r1_a5_k0_s1_e4_c512",
         "mqa_r1_k3_h8_s1_d64_c512", "uir_r1_a5_k0_s1_e4_c512", "mqa_r1_k3_h8_s1_d64_c512", "uir_r1_a5_k0_s1_e4_c512",
         "mqa_r1_k3_h8_s1_d64_c512", "uir_r1_a5_k0_s1_e4_c512"},
        {"cn_r1_k1_s1_c960"}};
  } else if (medium) {
    arch = {{"er_r1_k3_s2_e4_c48"},
            {"uir_r1_a3_k5_s2_e4_c80", "uir_r1_a3_k3_s1_e2_c80"},
            {"uir_r1_a3_k5_s2_e6_c160", "uir_r2_a3_k3_s1_e4_c160", "uir_r1_a3_k5_s1_e4_c160", "uir_r1_a3_k3_s1_e4_c160",
             "uir_r1_a3_k0_s1_e4_c160", "uir_r1_a0_k0_s1_e2_c160", "uir_r1_a3_k0_s1_e4_c160"},
            {"uir_r1_a5_k5_s2_e6_c256", "uir_r1_a5_k5_s1_e4_c256", "uir_r2_a3_k5_s1_e4_c256", "uir_r1_a0_k0_s1_e4_c256",
             "uir_r1_a3_k0_s1_e4_c256", "uir_r1_a3_k5_s1_e2_c256", "uir_r1_a5_k5_s1_e4_c256", "uir_r2_a0_k0_s1_e4_c256",
             "uir_r1_a5_k0_s1_e2_c256"},
            {"cn_r1_k1_s1_c960"}};
  } else if (large) {
    stem = 24;
    arch = {{"er_r1_k3_s2_e4_c48"},
            {"uir_r1_a3_k5_s2_e4_c96", "uir_r1_a3_k3_s1_e4_c96"},
            {"uir_r1_a3_k5_s2_e4_c192", "uir_r3_a3_k3_s1_e4_c192", "uir_r1_a3_k5_s1_e4_c192", "uir_r5_a5_k3_s1_e4_c192",
             "uir_r1_a3_k0_s1_e4_c192"},
            {"uir_r4_a5_k5_s2_e4_c512", "uir_r1_a5_k0_s1_e4_c512", "uir_r1_a5_k3_s1_e4_c512", "uir_r2_a5_k0_s1_e4_c512",
             "uir_r1_a5_k3_s1_e4_c512", "uir_r1_a5_k5_s1_e4_c512", "uir_r3_a5_k0_s1_e4_c512"},
            {"cn_r1_k1_s1_c960"}};
  } else {
    arch = {{"cn_r1_k3_s2_e1_c32", "cn_r1_k1_s1_e1_c32"},
            {"cn_r1_k3_s2_e1_c96", "cn_r1_k1_s1_e1_c64"},
            {"uir_r1_a5_k5_s2_e3_c96", "uir_r4_a0_k3_s1_e2_c96", "uir_r1_a3_k0_s1_e4_c96"},
            {"uir_r1_a3_k3_s2_e6_c128", "uir_r1_a5_k5_s1_e4_c128", "uir_r1_a0_k5_s1_e4_c128", "uir_r1_a0_k5_s1_e3_c128",
             "uir_r2_a0_k3_s1_e4_c128"},
            {"cn_r1_k1_s1_c960"}};
  }
  auto c = mnv3_base(arch, {}, act);
  c.head_bias = false;
  c.head_norm = true;
  c.num_features = 1280;
  c.stem_size = stem;
  c.fix_stem = mult < 1.0;
  c.round_chs = round_fn(mult);
  c.aa = aa;
  if (hybrid) c.layer_scale_init = 1e-5;
  return c;
}

}  // namespace

void register_family() {
  const Tf tf{true, true};
  std::vector<std::pair<std::string, ModelConfig>> models = {
      {"mobilenetv3_large_075", mobilenet_v3("mobilenetv3_large_075", 0.75)},
      {"mobilenetv3_large_100", mobilenet_v3("mobilenetv3_large_100", 1.0)},
      {"mobilenetv3_large_150d", mobilenet_v3("mobilenetv3_large_150d", 1.5, 1.2)},
      {"mobilenetv3_small_050", mobilenet_v3("mobilenetv3_small_050", 0.5)},
      {"mobilenetv3_small_075", mobilenet_v3("mobilenetv3_small_075", 0.75)},
      {"mobilenetv3_small_100", mobilenet_v3("mobilenetv3_small_100", 1.0)},
      {"mobilenetv3_rw", mobilenet_v3_rw(1.0)},
      {"tf_mobilenetv3_large_075", mobilenet_v3("tf_mobilenetv3_large_075", 0.75, 1.0, tf)},
      {"tf_mobilenetv3_large_100", mobilenet_v3("tf_mobilenetv3_large_100", 1.0, 1.0, tf)},
      {"tf_mobilenetv3_large_minimal_100", mobilenet_v3("tf_mobilenetv3_large_minimal_100", 1.0, 1.0, tf)},
      {"tf_mobilenetv3_small_075", mobilenet_v3("tf_mobilenetv3_small_075", 0.75, 1.0, tf)},
      {"tf_mobilenetv3_small_100", mobilenet_v3("tf_mobilenetv3_small_100", 1.0, 1.0, tf)},
      {"tf_mobilenetv3_small_minimal_100", mobilenet_v3("tf_mobilenetv3_small_minimal_100", 1.0, 1.0, tf)},
      {"fbnetv3_b", fbnetv3('b')},
      {"fbnetv3_d", fbnetv3('d')},
      {"fbnetv3_g", fbnetv3('g')},
      {"lcnet_035", lcnet(0.35)},
      {"lcnet_050", lcnet(0.5)},
      {"lcnet_075", lcnet(0.75)},
      {"lcnet_100", lcnet(1.0)},
      {"lcnet_150", lcnet(1.5)},
      {"mobilenetv4_conv_small_035", mobilenet_v4("mobilenetv4_conv_small_035", 0.35)},
      {"mobilenetv4_conv_small_050", mobilenet_v4("mobilenetv4_conv_small_050", 0.5)},
      {"mobilenetv4_conv_small", mobilenet_v4("mobilenetv4_conv_small", 1.0)},
      {"mobilenetv4_conv_medium", mobilenet_v4("mobilenetv4_conv_medium", 1.0)},
      {"mobilenetv4_conv_large", mobilenet_v4("mobilenetv4_conv_large", 1.0)},
      {"mobilenetv4_hybrid_medium", mobilenet_v4("mobilenetv4_hybrid_medium", 1.0)},
      {"mobilenetv4_hybrid_large", mobilenet_v4("mobilenetv4_hybrid_large", 1.0)},
      {"mobilenetv4_conv_aa_medium", mobilenet_v4("mobilenetv4_conv_aa_medium", 1.0, "avg")},
      {"mobilenetv4_conv_blur_medium", mobilenet_v4("mobilenetv4_conv_blur_medium", 1.0, "blurpc")},
      {"mobilenetv4_conv_aa_large", mobilenet_v4("mobilenetv4_conv_aa_large", 1.0, "avg")},
      {"mobilenetv4_hybrid_medium_075", mobilenet_v4("mobilenetv4_hybrid_medium_075", 0.75)},
      {"mobilenetv4_hybrid_large_075", mobilenet_v4("mobilenetv4_hybrid_large_075", 0.75)},
  };

  // Default pretrained tags whose preprocessing is not ImageNet's mean/std (timm's pretrained_cfg).
  const std::set<std::string> inception_norm = {
      "mobilenetv3_large_150d",   "mobilenetv4_conv_small_035", "mobilenetv4_conv_small_050",
      "tf_mobilenetv3_large_075", "tf_mobilenetv3_large_100",   "tf_mobilenetv3_large_minimal_100",
      "tf_mobilenetv3_small_075", "tf_mobilenetv3_small_100",   "tf_mobilenetv3_small_minimal_100"};

  for (auto& [name, cfg] : models) {
    ModelEntry entry;
    entry.name = name;
    entry.family = "mobilenetv3";
    entry.create = [name = name, cfg = cfg](const ModelArgs& args) -> Backbone {
      return effnet::create_efficientnet(name, cfg, args);
    };
    if (inception_norm.count(name)) entry.mean = entry.std = {0.5, 0.5, 0.5};
    register_model(std::move(entry));
  }
}

}  // namespace mobilenetv3
}  // namespace smp::timm
