// EfficientNet-builder behaviour the conformance fixtures do not cover: block-string decoding, depth
// and width scaling, the registry, the classifier heads, feature selection and errors.
#include <gtest/gtest.h>
#include <smp/fill.h>
#include <smp/io.h>
#include <smp/timm.h>

#include "support.h"
#include "timm/models/efficientnet_builder.h"

namespace {

using smp::timm::ModelArgs;
namespace effnet = smp::timm::effnet;

std::vector<std::string> family(const std::string& name) {
  std::vector<std::string> out;
  for (const auto& n : smp::timm::list_models())
    if (smp::timm::model_entry(n).family == name) out.push_back(n);
  return out;
}

bool has_key(const torch::nn::Module& m, const std::string& key) { return smp::io::state_dict(m).count(key) > 0; }

TEST(EfficientNet, RegistersEveryTimmName) {
  // timm.list_models() of timm/models/efficientnet.py and mobilenetv3.py
  const std::vector<std::string> efficientnet = {"efficientnet_b0",
                                                 "efficientnet_b0_g16_evos",
                                                 "efficientnet_b0_g8_gn",
                                                 "efficientnet_b0_gn",
                                                 "efficientnet_b1",
                                                 "efficientnet_b1_pruned",
                                                 "efficientnet_b2",
                                                 "efficientnet_b2_pruned",
                                                 "efficientnet_b3",
                                                 "efficientnet_b3_g8_gn",
                                                 "efficientnet_b3_gn",
                                                 "efficientnet_b3_pruned",
                                                 "efficientnet_b4",
                                                 "efficientnet_b5",
                                                 "efficientnet_b6",
                                                 "efficientnet_b7",
                                                 "efficientnet_b8",
                                                 "efficientnet_blur_b0",
                                                 "efficientnet_cc_b0_4e",
                                                 "efficientnet_cc_b0_8e",
                                                 "efficientnet_cc_b1_8e",
                                                 "efficientnet_el",
                                                 "efficientnet_el_pruned",
                                                 "efficientnet_em",
                                                 "efficientnet_es",
                                                 "efficientnet_es_pruned",
                                                 "efficientnet_h_b5",
                                                 "efficientnet_l2",
                                                 "efficientnet_lite0",
                                                 "efficientnet_lite1",
                                                 "efficientnet_lite2",
                                                 "efficientnet_lite3",
                                                 "efficientnet_lite4",
                                                 "efficientnet_x_b3",
                                                 "efficientnet_x_b5",
                                                 "efficientnetv2_l",
                                                 "efficientnetv2_m",
                                                 "efficientnetv2_rw_m",
                                                 "efficientnetv2_rw_s",
                                                 "efficientnetv2_rw_t",
                                                 "efficientnetv2_s",
                                                 "efficientnetv2_xl",
                                                 "fbnetc_100",
                                                 "gc_efficientnetv2_rw_t",
                                                 "mixnet_l",
                                                 "mixnet_m",
                                                 "mixnet_s",
                                                 "mixnet_xl",
                                                 "mixnet_xxl",
                                                 "mnasnet_050",
                                                 "mnasnet_075",
                                                 "mnasnet_100",
                                                 "mnasnet_140",
                                                 "mnasnet_small",
                                                 "mobilenet_edgetpu_100",
                                                 "mobilenet_edgetpu_v2_l",
                                                 "mobilenet_edgetpu_v2_m",
                                                 "mobilenet_edgetpu_v2_s",
                                                 "mobilenet_edgetpu_v2_xs",
                                                 "mobilenetv1_100",
                                                 "mobilenetv1_100h",
                                                 "mobilenetv1_125",
                                                 "mobilenetv2_035",
                                                 "mobilenetv2_050",
                                                 "mobilenetv2_075",
                                                 "mobilenetv2_100",
                                                 "mobilenetv2_110d",
                                                 "mobilenetv2_120d",
                                                 "mobilenetv2_140",
                                                 "semnasnet_050",
                                                 "semnasnet_075",
                                                 "semnasnet_100",
                                                 "semnasnet_140",
                                                 "spnasnet_100",
                                                 "test_efficientnet",
                                                 "test_efficientnet_evos",
                                                 "test_efficientnet_gn",
                                                 "test_efficientnet_ln",
                                                 "tf_efficientnet_b0",
                                                 "tf_efficientnet_b1",
                                                 "tf_efficientnet_b2",
                                                 "tf_efficientnet_b3",
                                                 "tf_efficientnet_b4",
                                                 "tf_efficientnet_b5",
                                                 "tf_efficientnet_b6",
                                                 "tf_efficientnet_b7",
                                                 "tf_efficientnet_b8",
                                                 "tf_efficientnet_cc_b0_4e",
                                                 "tf_efficientnet_cc_b0_8e",
                                                 "tf_efficientnet_cc_b1_8e",
                                                 "tf_efficientnet_el",
                                                 "tf_efficientnet_em",
                                                 "tf_efficientnet_es",
                                                 "tf_efficientnet_l2",
                                                 "tf_efficientnet_lite0",
                                                 "tf_efficientnet_lite1",
                                                 "tf_efficientnet_lite2",
                                                 "tf_efficientnet_lite3",
                                                 "tf_efficientnet_lite4",
                                                 "tf_efficientnetv2_b0",
                                                 "tf_efficientnetv2_b1",
                                                 "tf_efficientnetv2_b2",
                                                 "tf_efficientnetv2_b3",
                                                 "tf_efficientnetv2_l",
                                                 "tf_efficientnetv2_m",
                                                 "tf_efficientnetv2_s",
                                                 "tf_efficientnetv2_xl",
                                                 "tf_mixnet_l",
                                                 "tf_mixnet_m",
                                                 "tf_mixnet_s",
                                                 "tinynet_a",
                                                 "tinynet_b",
                                                 "tinynet_c",
                                                 "tinynet_d",
                                                 "tinynet_e"};
  const std::vector<std::string> mobilenetv3 = {"fbnetv3_b",
                                                "fbnetv3_d",
                                                "fbnetv3_g",
                                                "lcnet_035",
                                                "lcnet_050",
                                                "lcnet_075",
                                                "lcnet_100",
                                                "lcnet_150",
                                                "mobilenetv3_large_075",
                                                "mobilenetv3_large_100",
                                                "mobilenetv3_large_150d",
                                                "mobilenetv3_rw",
                                                "mobilenetv3_small_050",
                                                "mobilenetv3_small_075",
                                                "mobilenetv3_small_100",
                                                "mobilenetv4_conv_aa_large",
                                                "mobilenetv4_conv_aa_medium",
                                                "mobilenetv4_conv_blur_medium",
                                                "mobilenetv4_conv_large",
                                                "mobilenetv4_conv_medium",
                                                "mobilenetv4_conv_small",
                                                "mobilenetv4_conv_small_035",
                                                "mobilenetv4_conv_small_050",
                                                "mobilenetv4_hybrid_large",
                                                "mobilenetv4_hybrid_large_075",
                                                "mobilenetv4_hybrid_medium",
                                                "mobilenetv4_hybrid_medium_075",
                                                "tf_mobilenetv3_large_075",
                                                "tf_mobilenetv3_large_100",
                                                "tf_mobilenetv3_large_minimal_100",
                                                "tf_mobilenetv3_small_075",
                                                "tf_mobilenetv3_small_100",
                                                "tf_mobilenetv3_small_minimal_100"};
  EXPECT_EQ(family("efficientnet"), efficientnet);
  EXPECT_EQ(family("mobilenetv3"), mobilenetv3);
  EXPECT_EQ(smp::timm::model_entry("tf_efficientnet_lite0").mean, (std::vector<double>{0.5, 0.5, 0.5}));
  EXPECT_EQ(smp::timm::model_entry("tf_efficientnet_b0").mean, (std::vector<double>{0.485, 0.456, 0.406}));
  EXPECT_EQ(smp::timm::model_entry("tf_mobilenetv3_large_100").std, (std::vector<double>{0.5, 0.5, 0.5}));
}

TEST(EfficientNet, DecodesBlockStrings) {
  int64_t repeats = 0;
  auto ir = effnet::decode_block("ir_r2_k3_s2_e6_c24_se0.25", &repeats);
  EXPECT_EQ(repeats, 2);
  EXPECT_EQ(ir.type, "ir");
  EXPECT_EQ(ir.dw_kernel, (std::vector<int64_t>{3}));
  EXPECT_EQ(ir.stride, 2);
  EXPECT_DOUBLE_EQ(ir.exp_ratio, 6.0);
  EXPECT_EQ(ir.out_chs, 24);
  EXPECT_DOUBLE_EQ(ir.se_ratio, 0.25);
  EXPECT_FALSE(ir.noskip);
  EXPECT_EQ(ir.act, "");

  auto mixed = effnet::decode_block("ir_r1_k3.5.7_a1.1_p1.1_s2_e6_c40_se0.5_nsw", &repeats);
  EXPECT_EQ(mixed.dw_kernel, (std::vector<int64_t>{3, 5, 7}));
  EXPECT_EQ(mixed.exp_kernel, (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(mixed.pw_kernel, (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(mixed.act, "swish");

  auto ds = effnet::decode_block("dsa_r1_k3_s1_c32", &repeats);
  EXPECT_TRUE(ds.pw_act);
  EXPECT_TRUE(ds.noskip);
  auto cn = effnet::decode_block("cn_r1_k3_s1_e1_c16_skip", &repeats);
  EXPECT_TRUE(cn.skip);
  EXPECT_EQ(cn.kernel, 3);
  auto er = effnet::decode_block("er_r1_k3_s1_e4_c24_fc24_noskip", &repeats);
  EXPECT_EQ(er.force_in_chs, 24);
  EXPECT_TRUE(er.noskip);
  auto uir = effnet::decode_block("uir_r1_a3_k0_s1_e4_c160_gs8", &repeats);
  EXPECT_EQ(uir.dw_start, 3);
  EXPECT_EQ(uir.dw_mid, 0);
  EXPECT_EQ(uir.dw_end, 0);
  EXPECT_EQ(uir.group_size, 8);
  auto mqa = effnet::decode_block("mqa_r1_k3_h4_s1_v2_d64_c160", &repeats);
  EXPECT_EQ(mqa.num_heads, 4);
  EXPECT_EQ(mqa.key_dim, 64);
  EXPECT_EQ(mqa.kv_stride, 2);
  auto cc = effnet::decode_block("ir_r1_k3_s1_e6_c320_se0.25_cc4_nre", &repeats);
  EXPECT_EQ(cc.num_experts, 4);
  EXPECT_EQ(cc.act, "relu");

  EXPECT_THROW(effnet::decode_block("xx_r1_k3_s1_c16", &repeats), std::invalid_argument);
  EXPECT_THROW(effnet::decode_block("ir_r1_s1_e6_c16", &repeats), std::invalid_argument);  // no kernel
}

TEST(EfficientNet, ScalesDepthLikeTimm) {
  auto count = [](const effnet::StageDefs& stages) {
    std::vector<size_t> out;
    for (const auto& s : stages) out.push_back(s.size());
    return out;
  };
  const std::vector<std::vector<std::string>> b0 = {
      {"ds_r1_k3_s1_e1_c16"},  {"ir_r2_k3_s2_e6_c24"},  {"ir_r2_k5_s2_e6_c40"}, {"ir_r3_k3_s2_e6_c80"},
      {"ir_r3_k5_s1_e6_c112"}, {"ir_r4_k5_s2_e6_c192"}, {"ir_r1_k3_s1_e6_c320"}};
  effnet::DecodeOptions ceil3;
  ceil3.depth_multiplier = {3.1};  // efficientnet_b7
  EXPECT_EQ(count(effnet::decode_arch_def(b0, ceil3)), (std::vector<size_t>{4, 7, 7, 10, 10, 13, 4}));
  ceil3.fix_first_last = true;
  EXPECT_EQ(count(effnet::decode_arch_def(b0, ceil3)), (std::vector<size_t>{1, 7, 7, 10, 10, 13, 1}));
  // Stages with several definitions spread the scaled count, last definition first.
  effnet::DecodeOptions round;
  round.depth_multiplier = {1.3};
  round.depth_round = true;
  auto mixed = effnet::decode_arch_def({{"ir_r1_k3_s2_e6_c40", "ir_r3_k3.5_s1_e6_c40"}}, round);
  ASSERT_EQ(mixed[0].size(), 5u);
  EXPECT_EQ(mixed[0][0].dw_kernel, (std::vector<int64_t>{3}));
  EXPECT_EQ(mixed[0][1].dw_kernel, (std::vector<int64_t>{3, 5}));
  EXPECT_EQ(effnet::round_channels(32, 1.1), 32);
  EXPECT_EQ(effnet::round_channels(1280, 1.4), 1792);
  EXPECT_EQ(effnet::round_channels(16, 0.35), 8);
}

TEST(EfficientNet, FeatureInfoFollowsStageStrides) {
  auto b0 = smp::timm::create_features("efficientnet_b0");
  std::vector<std::string> modules;
  std::vector<int64_t> reductions;
  for (const auto& f : b0->feature_info()) {
    modules.push_back(f.module);
    reductions.push_back(f.reduction);
  }
  EXPECT_EQ(modules, (std::vector<std::string>{"blocks.0", "blocks.1", "blocks.2", "blocks.4", "blocks.6"}));
  EXPECT_EQ(reductions, (std::vector<int64_t>{2, 4, 8, 16, 32}));

  // A strided first block makes the stem a feature; stages followed by a stride-1 stage are not.
  auto small = smp::timm::create_features("mobilenetv3_small_100");
  modules.clear();
  for (const auto& f : small->feature_info()) modules.push_back(f.module);
  EXPECT_EQ(modules, (std::vector<std::string>{"bn1", "blocks.0", "blocks.1", "blocks.3", "blocks.5"}));
  EXPECT_EQ(small->out_indices(), (std::vector<int64_t>{0, 1, 2, 3, 4}));

  auto os8 = smp::timm::create_features("mobilenetv3_large_100", ModelArgs().output_stride(8));
  torch::NoGradGuard no_grad;
  auto ys = os8->forward(torch::zeros({1, 3, 64, 64}));
  ASSERT_EQ(ys.size(), 5u);
  EXPECT_EQ(ys[4].sizes(), (std::vector<int64_t>{1, 960, 8, 8}));
  EXPECT_EQ(os8->feature_info()[4].reduction, 8);
}

TEST(EfficientNet, FeaturesOnlyKeepsTimmNames) {
  auto f = smp::timm::create_features("efficientnet_b0", ModelArgs().out_indices({1, 3}));
  EXPECT_TRUE(has_key(*f, "conv_stem.weight"));
  EXPECT_TRUE(has_key(*f, "blocks.6.0.conv_pwl.weight"));  // timm builds every block
  EXPECT_FALSE(has_key(*f, "conv_head.weight"));
  EXPECT_FALSE(has_key(*f, "classifier.weight"));
  EXPECT_EQ(f->to_base_key("blocks.1.0.se.conv_reduce.weight"), "blocks.1.0.se.conv_reduce.weight");
  torch::NoGradGuard no_grad;
  auto ys = f->forward(torch::zeros({2, 3, 64, 64}));
  ASSERT_EQ(ys.size(), 2u);
  EXPECT_EQ(ys[0].sizes(), (std::vector<int64_t>{2, 24, 16, 16}));
  EXPECT_EQ(ys[1].sizes(), (std::vector<int64_t>{2, 112, 4, 4}));
  EXPECT_THROW(f->backbone().forward(torch::zeros({1, 3, 64, 64})), std::logic_error);
  EXPECT_THROW(smp::timm::create_features("efficientnet_b0", ModelArgs().out_indices({5})), std::invalid_argument);
}

TEST(EfficientNet, HeadsMatchTheFamily) {
  auto eff = smp::timm::create_model("efficientnet_b0");
  EXPECT_TRUE(has_key(*eff, "conv_head.weight"));
  EXPECT_TRUE(has_key(*eff, "bn2.running_var"));
  EXPECT_EQ(smp::io::state_dict(*eff).at("classifier.weight").sizes(), (std::vector<int64_t>{1000, 1280}));
  auto mnv3 = smp::timm::create_model("mobilenetv3_large_100");
  EXPECT_TRUE(has_key(*mnv3, "conv_head.bias"));
  EXPECT_FALSE(has_key(*mnv3, "bn2.weight"));
  auto mnv4 = smp::timm::create_model("mobilenetv4_conv_small");
  EXPECT_FALSE(has_key(*mnv4, "conv_head.bias"));
  EXPECT_TRUE(has_key(*mnv4, "norm_head.weight"));
  auto v1 = smp::timm::create_model("mobilenetv1_100");
  EXPECT_FALSE(has_key(*v1, "conv_head.weight"));
  EXPECT_EQ(smp::io::state_dict(*v1).at("classifier.weight").sizes(), (std::vector<int64_t>{1000, 1024}));
  auto headless = smp::timm::create_model("efficientnet_b0", ModelArgs().num_classes(0));
  EXPECT_FALSE(has_key(*headless, "classifier.weight"));
  torch::NoGradGuard no_grad;
  EXPECT_EQ(headless->forward(torch::zeros({1, 3, 32, 32})).sizes(), (std::vector<int64_t>{1, 1280}));
}

// Logits of full models against timm (tests/data/efficientnet/classifier_logits.safetensors: smp-fill-v1
// weights, num_classes=10, a filled [2, 3, 48, 48] input).
TEST(EfficientNet, ClassifierLogitsMatchTimm) {
  auto expected =
      smp::io::read_safetensors(std::string(SMP_TEST_DATA) + "/efficientnet/classifier_logits.safetensors").tensors;
  ASSERT_EQ(expected.size(), 5u);
  const auto x = smp::fill::input("input", {2, 3, 48, 48});
  for (const auto& [name, want] : expected) {
    auto model = smp::timm::create_model(name, ModelArgs().num_classes(10));
    smp::fill::fill_module(*model);
    model->eval();
    torch::NoGradGuard no_grad;
    auto got = model->forward(x);
    ASSERT_EQ(got.sizes(), want.sizes()) << name;
    EXPECT_LE(smp::test::relative_max_error(got, want), 1e-4) << name;
  }
}

TEST(EfficientNet, InChansAndPrunedWidths) {
  auto in1 = smp::timm::create_model("tf_efficientnet_b0", ModelArgs().in_chans(1));
  EXPECT_EQ(smp::io::state_dict(*in1).at("conv_stem.weight").sizes(), (std::vector<int64_t>{32, 1, 3, 3}));
  EXPECT_EQ(in1->first_conv(), "conv_stem");
  auto pruned = smp::timm::create_model("efficientnet_b3_pruned");
  const auto sd = smp::io::state_dict(*pruned);
  EXPECT_EQ(sd.at("blocks.4.3.se.conv_reduce.weight").sizes(), (std::vector<int64_t>{33, 226, 1, 1}));
  EXPECT_EQ(sd.at("blocks.6.1.conv_dw.weight").sizes(), (std::vector<int64_t>{2301, 1, 3, 3}));
  // timm's feature_info keeps the unpruned widths.
  EXPECT_EQ(smp::timm::create_features("efficientnet_b3_pruned")->feature_info()[1].num_chs, 32);
}

}  // namespace
