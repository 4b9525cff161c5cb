// The models of timm's hardcorenas.py: HardCoReNAS A-F, MobileNet-V3 networks found by latency-aware
// search, built by the EfficientNet builder with the MobileNet-V3 head.
#include "timm/families.h"
#include "timm/models/efficientnet_builder.h"

namespace smp::timm {

namespace hardcorenas {
namespace {

using Arch = std::vector<std::vector<std::string>>;

effnet::ModelConfig hardcorenas(const Arch& arch) {
  effnet::ModelConfig c;
  c.blocks = effnet::decode_arch_def(arch);
  c.head = effnet::HeadType::kMobileNetV3;
  c.num_features = 1280;
  c.stem_size = 32;
  c.se_from_exp = true;
  c.act = "hard_swish";
  c.se.gate = "hard_sigmoid";
  c.se.force_act = "relu";
  c.se.rd_round = effnet::round_fn();
  return c;
}

}  // namespace

void register_family() {
  const std::vector<std::pair<std::string, Arch>> archs = {
      {"hardcorenas_a",
       {{"ds_r1_k3_s1_e1_c16_nre"},
        {"ir_r1_k5_s2_e3_c24_nre", "ir_r1_k5_s1_e3_c24_nre_se0.25"},
        {"ir_r1_k5_s2_e3_c40_nre", "ir_r1_k5_s1_e6_c40_nre_se0.25"},
        {"ir_r1_k5_s2_e6_c80_se0.25", "ir_r1_k5_s1_e6_c80_se0.25"},
        {"ir_r1_k5_s1_e6_c112_se0.25", "ir_r1_k5_s1_e6_c112_se0.25"},
        {"ir_r1_k5_s2_e6_c192_se0.25", "ir_r1_k5_s1_e6_c192_se0.25"},
        {"cn_r1_k1_s1_c960"}}},
      {"hardcorenas_b",
       {{"ds_r1_k3_s1_e1_c16_nre"},
        {"ir_r1_k5_s2_e3_c24_nre", "ir_r1_k5_s1_e3_c24_nre_se0.25", "ir_r1_k3_s1_e3_c24_nre"},
        {"ir_r1_k5_s2_e3_c40_nre", "ir_r1_k5_s1_e3_c40_nre", "ir_r1_k5_s1_e3_c40_nre"},
        {"ir_r1_k5_s2_e3_c80", "ir_r1_k5_s1_e3_c80", "ir_r1_k3_s1_e3_c80", "ir_r1_k3_s1_e3_c80"},
        {"ir_r1_k5_s1_e3_c112", "ir_r1_k3_s1_e3_c112", "ir_r1_k3_s1_e3_c112", "ir_r1_k3_s1_e3_c112"},
        {"ir_r1_k5_s2_e6_c192_se0.25", "ir_r1_k5_s1_e6_c192_se0.25", "ir_r1_k3_s1_e3_c192_se0.25"},
        {"cn_r1_k1_s1_c960"}}},
      {"hardcorenas_c",
       {{"ds_r1_k3_s1_e1_c16_nre"},
        {"ir_r1_k5_s2_e3_c24_nre", "ir_r1_k5_s1_e3_c24_nre_se0.25"},
        {"ir_r1_k5_s2_e3_c40_nre", "ir_r1_k5_s1_e3_c40_nre", "ir_r1_k5_s1_e3_c40_nre", "ir_r1_k5_s1_e3_c40_nre"},
        {"ir_r1_k5_s2_e4_c80", "ir_r1_k5_s1_e6_c80_se0.25", "ir_r1_k3_s1_e3_c80", "ir_r1_k3_s1_e3_c80"},
        {"ir_r1_k5_s1_e6_c112_se0.25", "ir_r1_k3_s1_e3_c112", "ir_r1_k3_s1_e3_c112", "ir_r1_k3_s1_e3_c112"},
        {"ir_r1_k5_s2_e6_c192_se0.25", "ir_r1_k5_s1_e6_c192_se0.25", "ir_r1_k3_s1_e3_c192_se0.25"},
        {"cn_r1_k1_s1_c960"}}},
      {"hardcorenas_d",
       {{"ds_r1_k3_s1_e1_c16_nre"},
        {"ir_r1_k5_s2_e3_c24_nre_se0.25", "ir_r1_k5_s1_e3_c24_nre_se0.25"},
        {"ir_r1_k5_s2_e3_c40_nre_se0.25", "ir_r1_k5_s1_e4_c40_nre_se0.25", "ir_r1_k3_s1_e3_c40_nre_se0.25"},
        {"ir_r1_k5_s2_e4_c80_se0.25", "ir_r1_k3_s1_e3_c80_se0.25", "ir_r1_k3_s1_e3_c80_se0.25",
         "ir_r1_k3_s1_e3_c80_se0.25"},
        {"ir_r1_k3_s1_e4_c112_se0.25", "ir_r1_k5_s1_e4_c112_se0.25", "ir_r1_k3_s1_e3_c112_se0.25",
         "ir_r1_k5_s1_e3_c112_se0.25"},
        {"ir_r1_k5_s2_e6_c192_se0.25", "ir_r1_k5_s1_e6_c192_se0.25", "ir_r1_k5_s1_e6_c192_se0.25",
         "ir_r1_k3_s1_e6_c192_se0.25"},
        {"cn_r1_k1_s1_c960"}}},
      {"hardcorenas_e",
       {{"ds_r1_k3_s1_e1_c16_nre"},
        {"ir_r1_k5_s2_e3_c24_nre_se0.25", "ir_r1_k5_s1_e3_c24_nre_se0.25"},
        {"ir_r1_k5_s2_e6_c40_nre_se0.25", "ir_r1_k5_s1_e4_c40_nre_se0.25", "ir_r1_k5_s1_e4_c40_nre_se0.25",
         "ir_r1_k3_s1_e3_c40_nre_se0.25"},
        {"ir_r1_k5_s2_e4_c80_se0.25", "ir_r1_k3_s1_e6_c80_se0.25"},
        {"ir_r1_k5_s1_e6_c112_se0.25", "ir_r1_k5_s1_e6_c112_se0.25", "ir_r1_k5_s1_e6_c112_se0.25",
         "ir_r1_k5_s1_e3_c112_se0.25"},
        {"ir_r1_k5_s2_e6_c192_se0.25", "ir_r1_k5_s1_e6_c192_se0.25", "ir_r1_k5_s1_e6_c192_se0.25",
         "ir_r1_k3_s1_e6_c192_se0.25"},
        {"cn_r1_k1_s1_c960"}}},
      {"hardcorenas_f",
       {{"ds_r1_k3_s1_e1_c16_nre"},
        {"ir_r1_k5_s2_e3_c24_nre_se0.25", "ir_r1_k5_s1_e3_c24_nre_se0.25"},
        {"ir_r1_k5_s2_e6_c40_nre_se0.25", "ir_r1_k5_s1_e6_c40_nre_se0.25"},
        {"ir_r1_k5_s2_e6_c80_se0.25", "ir_r1_k5_s1_e6_c80_se0.25", "ir_r1_k3_s1_e3_c80_se0.25",
         "ir_r1_k3_s1_e3_c80_se0.25"},
        {"ir_r1_k3_s1_e6_c112_se0.25", "ir_r1_k5_s1_e6_c112_se0.25", "ir_r1_k5_s1_e6_c112_se0.25",
         "ir_r1_k3_s1_e3_c112_se0.25"},
        {"ir_r1_k5_s2_e6_c192_se0.25", "ir_r1_k5_s1_e6_c192_se0.25", "ir_r1_k3_s1_e6_c192_se0.25",
         "ir_r1_k3_s1_e6_c192_se0.25"},
        {"cn_r1_k1_s1_c960"}}},
  };
  for (const auto& [name, arch] : archs) {
    ModelEntry entry;
    entry.name = name;
    entry.family = "hardcorenas";
    entry.create = [name = name, cfg = hardcorenas(arch)](const ModelArgs& args) -> Backbone {
      return effnet::create_efficientnet(name, cfg, args);
    };
    register_model(std::move(entry));
  }
}

}  // namespace hardcorenas
}  // namespace smp::timm
