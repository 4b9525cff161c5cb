#include <gtest/gtest.h>
#include <smp/io.h>

namespace {

struct TinyImpl : torch::nn::Module {
  TinyImpl() {
    conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 2, 1)));
    bn = register_module("bn", torch::nn::BatchNorm2d(2));
  }
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
};

}  // namespace

TEST(StateDict, KeysMatchPythonNames) {
  TinyImpl m;
  auto sd = smp::io::state_dict(m);
  std::vector<std::string> keys;
  for (const auto& [k, v] : sd) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"bn.bias", "bn.num_batches_tracked", "bn.running_mean", "bn.running_var",
                                            "bn.weight", "conv.bias", "conv.weight"}));
}

TEST(StateDict, StrictLoadReportsEveryProblemAndChangesNothing) {
  TinyImpl m;
  auto before = m.conv->weight.clone();
  smp::io::TensorMap file = {{"conv.weight", torch::zeros({2, 3, 1, 1})},
                             {"conv.bias", torch::zeros({5})},
                             {"head.weight", torch::zeros({1})}};
  try {
    smp::io::load_state_dict(m, file);
    FAIL() << "strict load accepted a mismatched checkpoint";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("bn.weight"), std::string::npos);
    EXPECT_NE(msg.find("head.weight"), std::string::npos);
    EXPECT_NE(msg.find("conv.bias: checkpoint [5] vs model [2]"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("num_batches_tracked"), std::string::npos) << "the BN counter is optional";
  }
  EXPECT_TRUE(torch::equal(m.conv->weight, before));

  auto report = smp::io::load_state_dict(m, file, smp::io::LoadOptions().strict(false));
  EXPECT_EQ(report.unexpected, std::vector<std::string>{"head.weight"});
  EXPECT_EQ(report.mismatched.size(), 1u);
  EXPECT_TRUE(torch::equal(m.conv->weight, torch::zeros({2, 3, 1, 1})));
}

TEST(StateDict, RenameAndDtypeConversion) {
  TinyImpl m;
  smp::io::TensorMap file;
  for (const auto& [k, v] : smp::io::state_dict(m)) file["model." + k] = torch::ones_like(v).to(torch::kFloat16);
  file["model.classifier.weight"] = torch::ones({3});
  auto report = smp::io::load_state_dict(
      m, file, smp::io::LoadOptions().rename([](const std::string& k) {
        return k.rfind("model.classifier", 0) == 0 ? std::string() : k.substr(6);
      }));
  EXPECT_TRUE(report.ok()) << report.describe();
  EXPECT_EQ(m.bn->running_var.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(m.bn->running_var, torch::ones({2})));
}

TEST(StateDict, AdaptInputConvLikeTimm) {
  auto w = torch::arange(2 * 3 * 2 * 2, torch::kFloat32).reshape({2, 3, 2, 2});
  auto one = smp::io::adapt_input_conv(w, 1);
  EXPECT_TRUE(torch::allclose(one, w.select(1, 0).unsqueeze(1) + w.select(1, 1).unsqueeze(1) + w.select(1, 2).unsqueeze(1)));
  auto four = smp::io::adapt_input_conv(w, 4);
  ASSERT_EQ(four.sizes(), (std::vector<int64_t>{2, 4, 2, 2}));
  EXPECT_TRUE(torch::allclose(four.select(1, 3), w.select(1, 0) * 0.75f));
  EXPECT_TRUE(torch::allclose(four.select(1, 2), w.select(1, 2) * 0.75f));

  struct OneImpl : torch::nn::Module {
    OneImpl() { conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 2, 1).bias(false))); }
    torch::nn::Conv2d conv{nullptr};
  } one_model;
  auto src = torch::ones({2, 3, 1, 1});
  smp::io::load_state_dict(one_model, {{"conv.weight", src}}, smp::io::LoadOptions().first_conv_weight("conv.weight"));
  EXPECT_TRUE(torch::allclose(one_model.conv->weight, torch::full({2, 1, 1, 1}, 3.0f)));
}
