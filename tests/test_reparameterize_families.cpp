// Re-parameterisation of the families that fold training branches for inference (RepGhostNet,
// GhostNetV3, RepVGG, NextViT, RepViT): the logits stay the same, and the folded state_dict is
// timm's. tests/data/reparameterize/<model>.txt: "name shape" of every entry of
// timm.utils.reparameterize_model(timm.create_model(<model>, num_classes=10)).state_dict().
#include <gtest/gtest.h>
#include <smp/fill.h>
#include <smp/io.h>
#include <smp/reparameterize.h>
#include <smp/timm.h>

#include <algorithm>
#include <fstream>

#include "support.h"

using namespace smp::test;
using smp::timm::ModelArgs;

namespace {

class Reparameterize : public ::testing::TestWithParam<std::string> {};

TEST_P(Reparameterize, KeepsLogitsAndGivesTimmsStateDict) {
  torch::NoGradGuard no_grad;
  auto model = smp::timm::create_model(GetParam(), ModelArgs().num_classes(10));
  smp::fill::fill_module(*model);
  model->eval();
  // In float64 the folding is exact up to rounding far below any real mistake.
  model->to(torch::kFloat64);
  auto x = smp::fill::input("input", {2, 3, 64, 64}, torch::kFloat64);
  auto before = model->forward(x);
  EXPECT_GT(smp::timm::reparameterize(*model), 0);
  EXPECT_LE(relative_max_error(model->forward(x), before), 1e-10);

  std::vector<std::string> got, want;
  for (const auto& [name, value] : smp::io::state_dict(*model)) {
    std::string line = name + " ";
    for (int64_t d = 0; d < value.dim(); ++d) line += (d ? "x" : "") + std::to_string(value.size(d));
    got.push_back(line);
  }
  std::ifstream in(std::string(SMP_TEST_DATA) + "/reparameterize/" + GetParam() + ".txt");
  for (std::string line; std::getline(in, line);) want.push_back(line);
  ASSERT_FALSE(want.empty());
  std::sort(got.begin(), got.end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got, want);
}

INSTANTIATE_TEST_SUITE_P(Families, Reparameterize,
                         ::testing::Values("repghostnet_050", "ghostnetv3_050", "repvgg_a0", "nextvit_small",
                                           "repvit_m0_9"));

}  // namespace
