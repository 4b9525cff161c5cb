// Stochastic depth and the dropout of timm's drop_rate: the shared functions, and the rates reaching
// backbones and encoders without changing their state dicts or their eval-mode outputs.
#include <gtest/gtest.h>
#include <smp/encoders.h>
#include <smp/fill.h>
#include <smp/models.h>
#include <smp/io.h>
#include <smp/timm.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "timm/layers/drop_path.h"

using smp::timm::ModelArgs;
namespace layers = smp::timm::layers;

namespace {

std::vector<std::string> keys_of(const torch::nn::Module& module) {
  std::vector<std::string> keys;
  for (const auto& [key, value] : smp::io::state_dict(module)) keys.push_back(key);
  return keys;
}

TEST(DropPath, OutsideTrainingOrAtRateZeroTheInputItselfComesBack) {
  const auto x = torch::randn({4, 3, 5, 5});
  EXPECT_TRUE(layers::drop_path(x, 0.5, /*training=*/false).is_same(x));
  EXPECT_TRUE(layers::drop_path(x, 0.0, /*training=*/true).is_same(x));
  EXPECT_TRUE(layers::dropout(x, 0.5, /*training=*/false).is_same(x));
  EXPECT_TRUE(layers::dropout(x, 0.0, /*training=*/true).is_same(x));
}

TEST(DropPath, TrainingZeroesWholeSamplesAndScalesTheKeptOnes) {
  torch::manual_seed(0);
  constexpr int64_t kSamples = 4000;
  const auto x = torch::rand({kSamples, 3, 2, 2}) + 1;  // no zero entries of its own
  const auto y = layers::drop_path(x, 0.5, /*training=*/true);
  ASSERT_EQ(y.sizes(), x.sizes());
  const auto flat_x = x.flatten(1), flat_y = y.flatten(1);
  const auto kept = (flat_y != 0).any(1);
  // Each sample is either entirely zero or exactly twice its input (1 / keep probability).
  EXPECT_TRUE(torch::equal(flat_y.index({kept}), flat_x.index({kept}) * 2));
  EXPECT_TRUE(torch::equal(flat_y.index({~kept}), torch::zeros_like(flat_x.index({~kept}))));
  const double kept_fraction = kept.to(torch::kDouble).mean().item<double>();
  EXPECT_GT(kept_fraction, 0.45);
  EXPECT_LT(kept_fraction, 0.55);
}

TEST(DropPath, RatesRiseLinearlyOverTheBlocksOfAllStages) {
  const auto rates = layers::drop_path_rates(0.4, {2, 3});
  ASSERT_EQ(rates.size(), 2u);
  const std::vector<std::vector<double>> expected = {{0.0, 0.1}, {0.2, 0.3, 0.4}};
  for (size_t s = 0; s < expected.size(); ++s) {
    ASSERT_EQ(rates[s].size(), expected[s].size());
    for (size_t b = 0; b < expected[s].size(); ++b) EXPECT_NEAR(rates[s][b], expected[s][b], 1e-12) << s << "." << b;
  }
}

TEST(DropPath, RateOutsideZeroToOneIsRefused) {
  const auto x = torch::ones({2, 3});
  EXPECT_THROW(layers::drop_path(x, 1.5, /*training=*/false), std::invalid_argument);
  EXPECT_THROW(layers::dropout(x, -0.1, /*training=*/false), std::invalid_argument);
}

// A backbone built with `args` and one built without them, holding the same smp-fill-v1 weights (not
// the initial ones: ConvNeXt's layer scales start at 1e-6, which hides every residual branch).
struct Pair {
  smp::timm::Backbone plain, regularised;
};
Pair same_weights(const std::string& model, const ModelArgs& args) {
  Pair p{smp::timm::create_model(model, ModelArgs().num_classes(5)),
         smp::timm::create_model(model, ModelArgs(args).num_classes(5))};
  smp::fill::fill_module(*p.plain);
  smp::io::load_state_dict(*p.regularised, smp::io::state_dict(*p.plain));
  return p;
}

TEST(DropPath, BackbonesKeepTheirKeysAndEvalOutputsAndDifferOnlyInTraining) {
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({8, 3, 64, 64});
  // mobileone_s0: byobnet's MobileOne blocks, whose stochastic depth lives in the shared layer.
  for (const std::string model : {"resnet18", "convnext_atto", "mobileone_s0"}) {
    auto p = same_weights(model, ModelArgs().drop_path_rate(0.2));
    EXPECT_EQ(keys_of(*p.regularised), keys_of(*p.plain)) << model;

    p.plain->eval();
    p.regularised->eval();
    EXPECT_TRUE(torch::equal(p.regularised->forward(x), p.plain->forward(x))) << model;

    p.plain->train();
    p.regularised->train();
    torch::manual_seed(0);
    const auto plain = p.plain->forward(x);
    torch::manual_seed(0);
    const auto regularised = p.regularised->forward(x);
    EXPECT_FALSE(torch::allclose(regularised, plain)) << model;
    // Training without any rate is as deterministic as eval.
    torch::manual_seed(1);
    EXPECT_TRUE(torch::equal(p.plain->forward(x), plain)) << model;
  }
}

TEST(DropPath, HeadDropoutActsInTrainingOnly) {
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({4, 3, 64, 64});
  auto p = same_weights("convnext_atto", ModelArgs().drop_rate(0.5));
  EXPECT_EQ(keys_of(*p.regularised), keys_of(*p.plain));
  p.plain->eval();
  p.regularised->eval();
  EXPECT_TRUE(torch::equal(p.regularised->forward(x), p.plain->forward(x)));
  p.plain->train();
  p.regularised->train();
  EXPECT_FALSE(torch::allclose(p.regularised->forward(x), p.plain->forward(x)));
}

TEST(DropPath, EncoderOptionsReachTheBackbone) {
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({4, 3, 64, 64});
  // A universal timm encoder and smp's own Mix Transformer.
  for (const std::string name : {"tu-resnet18", "mit_b0"}) {
    auto plain = smp::create_encoder(smp::EncoderOptions().name(name));
    auto regularised = smp::create_encoder(smp::EncoderOptions().name(name).drop_path_rate(0.5));
    EXPECT_EQ(keys_of(*regularised), keys_of(*plain)) << name;
    smp::io::load_state_dict(*regularised, smp::io::state_dict(*plain));

    plain->eval();
    regularised->eval();
    EXPECT_TRUE(torch::equal(regularised->forward(x).back(), plain->forward(x).back())) << name;

    plain->train();
    regularised->train();
    EXPECT_FALSE(torch::allclose(regularised->forward(x).back(), plain->forward(x).back())) << name;
  }
}

TEST(DropPath, ModelKeywordsReachTheEncoderAndTheConfig) {
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({4, 3, 64, 64});
  auto plain = smp::create_model("Unet", {"encoder_name=tu-resnet18", "encoder_depth=3", "decoder_channels=[16,8,4]"});
  auto regularised = smp::create_model(
      "Unet", {"encoder_name=tu-resnet18", "encoder_depth=3", "decoder_channels=[16,8,4]", "drop_path_rate=0.5"});
  // smp passes them through **kwargs: config.json holds them only when given.
  EXPECT_FALSE(plain->config().contains("drop_path_rate"));
  EXPECT_EQ(regularised->config()["drop_path_rate"], 0.5);
  smp::io::load_state_dict(*regularised, smp::io::state_dict(*plain));
  plain->eval();
  regularised->eval();
  EXPECT_TRUE(torch::equal(regularised->forward(x), plain->forward(x)));
  plain->train();
  regularised->train();
  EXPECT_FALSE(torch::allclose(regularised->forward(x), plain->forward(x)));
}

}  // namespace
