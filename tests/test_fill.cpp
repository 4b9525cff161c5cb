// smp-fill-v1 against the check values printed in the fixtures README (from the Python reference).
#include <gtest/gtest.h>
#include <smp/fill.h>

TEST(Fill, ConvWeightMatchesReferenceCheckValues) {
  auto w = smp::fill::parameter("conv1.weight", {2, 3, 1, 1}, torch::kFloat32);
  const float expected[] = {0.09014988f, 0.49032342f, -0.95415664f, 0.47239554f, -0.26129973f, 0.92854595f};
  auto flat = w.flatten();
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(flat[i].item<float>(), expected[i], 1e-7) << i;
}

TEST(Fill, InputUniformMatchesReferenceCheckValues) {
  const double expected[] = {0.09781832, 0.65236038, 0.20362425, 0.27444464};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(smp::fill::uniform("input", i), expected[i], 1e-8) << i;
  auto x = smp::fill::input("input", {4});
  EXPECT_NEAR(x[1].item<float>(), 2 * 0.65236038 - 1, 1e-7);
}

TEST(Fill, RulesBySuffixAndShape) {
  auto var = smp::fill::parameter("bn.running_var", {100}, torch::kFloat32);
  EXPECT_GE(var.min().item<float>(), 0.5f);
  EXPECT_LT(var.max().item<float>(), 1.5f);
  auto gamma = smp::fill::parameter("norm.weight", {100}, torch::kFloat32);
  EXPECT_GE(gamma.min().item<float>(), 0.75f);
  EXPECT_LE(gamma.max().item<float>(), 1.25f);
  auto bias = smp::fill::parameter("fc.bias", {100}, torch::kFloat32);
  EXPECT_LE(bias.abs().max().item<float>(), 0.25f);
  auto counter = smp::fill::parameter("bn.num_batches_tracked", {}, torch::kInt64);
  EXPECT_EQ(counter.item<int64_t>(), 0);
  auto w = smp::fill::parameter("fc.weight", {10, 300}, torch::kFloat32);
  EXPECT_LE(w.abs().max().item<float>(), std::sqrt(3.0f / 300.0f));
}
