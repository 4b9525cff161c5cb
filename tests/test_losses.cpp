// Losses: values worked out by hand on tiny inputs, option validation and its messages, the
// factory (JSON and key=value words), CombinedLoss, and the reference fixtures run directly.
#include <gtest/gtest.h>
#include <smp/conformance.h>
#include <smp/losses.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "conformance/kinds.h"
#include "support.h"

using namespace smp::test;

namespace {

using namespace smp::losses;
using nlohmann::json;

// Probabilities [1, 1, 2, 2] = 0.8, 0.2, 0.6, 0.4 against targets 1, 0, 0, 1:
// TP = 1.2, FP = 0.8, FN = 0.8.
torch::Tensor probs() { return torch::tensor({0.8f, 0.2f, 0.6f, 0.4f}).reshape({1, 1, 2, 2}); }
torch::Tensor truth() { return torch::tensor({1.f, 0.f, 0.f, 1.f}).reshape({1, 1, 2, 2}); }

float value(const torch::Tensor& t) { return t.item<float>(); }

TEST(Losses, DiceJaccardTverskyOnProbabilities) {
  DiceLoss dice(DiceLossOptions("binary").from_logits(false));
  EXPECT_NEAR(value(dice(probs(), truth())), 1 - 2 * 1.2 / 4.0, 1e-6);  // 1 - 0.6
  DiceLoss dice_log(DiceLossOptions("binary").from_logits(false).log_loss(true));
  EXPECT_NEAR(value(dice_log(probs(), truth())), -std::log(0.6), 1e-6);
  JaccardLoss jaccard(JaccardLossOptions("binary").from_logits(false));
  EXPECT_NEAR(value(jaccard(probs(), truth())), 1 - 1.2 / 2.8, 1e-6);
  TverskyLoss tversky(TverskyLossOptions("binary").from_logits(false).alpha(0.2).beta(0.4).gamma(2.0));
  EXPECT_NEAR(value(tversky(probs(), truth())), std::pow(1 - 1.2 / (1.2 + 0.2 * 0.8 + 0.4 * 0.8), 2), 1e-6);
  // smooth is added to numerator and denominator
  DiceLoss smooth(DiceLossOptions("binary").from_logits(false).smooth(1.0));
  EXPECT_NEAR(value(smooth(probs(), truth())), 1 - 2.2 / 3.0, 1e-6);
}

TEST(Losses, DiceFromLogitsAppliesSigmoid) {
  const auto logits = torch::log(probs() / (1 - probs()));
  DiceLoss dice("binary");
  EXPECT_NEAR(value(dice(logits, truth())), 0.4, 1e-6);
}

TEST(Losses, DiceZeroesClassesWithoutTruePixelsAndHonoursIgnoreIndex) {
  // Multilabel, channel 1 has no positive pixel: its loss is zeroed, the mean still divides by 2.
  auto pred = torch::cat({probs(), torch::full({1, 1, 2, 2}, 0.3f)}, 1);
  auto target = torch::cat({truth(), torch::zeros({1, 1, 2, 2})}, 1);
  DiceLoss dice(DiceLossOptions("multilabel").from_logits(false));
  EXPECT_NEAR(value(dice(pred, target)), 0.4 / 2, 1e-6);
  // Binary with ignore_index: the pixels labelled 255 drop out of every sum.
  auto t = torch::tensor({1.f, 255.f, 0.f, 255.f}).reshape({1, 1, 2, 2});
  DiceLoss ignoring(DiceLossOptions("binary").from_logits(false).ignore_index(255));
  // Kept: p = 0.8, 0.6 with t = 1, 0 -> TP 0.8, FP 0.6, FN 0.2.
  EXPECT_NEAR(value(ignoring(probs(), t)), 1 - 0.8 / (0.8 + 0.3 + 0.1), 1e-6);
}

TEST(Losses, DiceMulticlassClassesAndWeights) {
  // Two classes, one-hot probabilities that are exactly right for class 0 and wrong for class 1.
  auto pred = torch::tensor({1.f, 0.f, 0.f, 0.f,   // class 0 scores
                             0.f, 1.f, 1.f, 1.f})  // class 1 scores
                  .reshape({1, 2, 2, 2});
  auto labels = torch::tensor({0, 0, 1, 1}, torch::kLong).reshape({1, 2, 2});
  // class 0: TP 1, FP 0, FN 1 -> dice 2/3; class 1: TP 2, FP 1, FN 0 -> dice 4/5.
  const double l0 = 1 - 2.0 / 3, l1 = 1 - 4.0 / 5;
  DiceLoss all(DiceLossOptions("multiclass").from_logits(false));
  EXPECT_NEAR(value(all(pred, labels)), (l0 + l1) / 2, 1e-6);
  DiceLoss only1(DiceLossOptions("multiclass").from_logits(false).classes(std::vector<int64_t>{1}));
  EXPECT_NEAR(value(only1(pred, labels)), l1, 1e-6);
  DiceLoss weighted(DiceLossOptions("multiclass").from_logits(false).class_weights(std::vector<double>{1.0, 3.0}));
  EXPECT_NEAR(value(weighted(pred, labels)), (l0 + 3 * l1) / 4, 1e-6);
}

TEST(Losses, FocalHandValues) {
  auto x = torch::zeros({1, 1, 1, 1});
  auto t = torch::ones({1, 1, 1, 1});
  // p = 0.5: focal term 0.25, cross entropy ln 2
  FocalLoss plain("binary");
  EXPECT_NEAR(value(plain(x, t)), 0.25 * std::log(2.0), 1e-6);
  FocalLoss alpha(FocalLossOptions("binary").alpha(0.25));
  EXPECT_NEAR(value(alpha(x, t)), 0.25 * 0.25 * std::log(2.0), 1e-6);
  // reduced: pt = 0.5 is not below the threshold 0.5 -> ((1 - pt) / 0.5)^2 = 1
  FocalLoss reduced(FocalLossOptions("binary").reduced_threshold(0.5));
  EXPECT_NEAR(value(reduced(x, t)), std::log(2.0), 1e-6);
  // normalized: divided by the sum of focal terms (one element: plain cross entropy)
  FocalLoss normalized(FocalLossOptions("binary").normalized(true));
  EXPECT_NEAR(value(normalized(x, t)), std::log(2.0), 1e-5);
  // from probabilities: p = 0.5 is logit 0
  FocalLoss probs_in(FocalLossOptions("binary").from_logits(false));
  EXPECT_NEAR(value(probs_in(torch::full({1, 1, 1, 1}, 0.5f), t)), 0.25 * std::log(2.0), 1e-6);
}

TEST(Losses, FocalReductionsAndIgnoreIndex) {
  auto x = torch::zeros({2, 1, 2, 2});
  auto t = torch::ones({2, 1, 2, 2});
  const double each = 0.25 * std::log(2.0);
  EXPECT_NEAR(value(FocalLoss(FocalLossOptions("binary").reduction("sum"))(x, t)), 8 * each, 1e-5);
  auto none = FocalLoss(FocalLossOptions("binary").reduction("none"))(x, t);
  EXPECT_EQ(none.sizes(), torch::IntArrayRef({8}));
  // ignored targets leave the mean: one of eight kept pixels has a different loss
  auto t2 = t.clone();
  t2.view(-1).slice(0, 0, 7).fill_(255);
  auto x2 = x.clone();
  x2.view(-1)[7] = 2.0;  // p = sigmoid(2), target 1
  const double p = 1 / (1 + std::exp(-2.0));
  FocalLoss ignoring(FocalLossOptions("binary").ignore_index(255));
  EXPECT_NEAR(value(ignoring(x2, t2)), std::pow(1 - p, 2) * -std::log(p), 1e-6);
}

TEST(Losses, LovaszHingeHandValues) {
  LovaszLoss lovasz("binary");
  // one positive pixel: relu(1 - logit)
  EXPECT_NEAR(value(lovasz(torch::full({1, 1, 1, 1}, 0.25f), torch::ones({1, 1, 1, 1}))), 0.75, 1e-6);
  // logits 0.5, 0.5 for labels 1, 0: errors 0.5, 1.5; Lovasz gradient 0.5, 0.5 -> 1.0
  auto logits = torch::tensor({0.5f, 0.5f}).reshape({1, 1, 1, 2});
  auto labels = torch::tensor({1.f, 0.f}).reshape({1, 1, 1, 2});
  EXPECT_NEAR(value(lovasz(logits, labels)), 1.0, 1e-6);
  // per image: mean of the two images' losses (0.75 and 0)
  auto two = torch::tensor({0.25f, 3.f}).reshape({2, 1, 1, 1});
  LovaszLoss per_image(LovaszLossOptions("binary").per_image(true));
  EXPECT_NEAR(value(per_image(two, torch::ones({2, 1, 1, 1}))), 0.375, 1e-6);
}

TEST(Losses, LovaszAllIgnoredGivesZeroWithZeroGradient) {
  auto logits = torch::randn({1, 3, 2, 2}).requires_grad_(true);
  auto labels = torch::full({1, 2, 2}, 255, torch::kLong);
  LovaszLoss lovasz(LovaszLossOptions("multiclass").ignore_index(255));
  auto loss = lovasz(logits, labels);
  EXPECT_EQ(loss.dim(), 0);
  EXPECT_EQ(value(loss), 0.f);
  loss.backward();
  EXPECT_EQ(logits.grad().abs().sum().item<float>(), 0.f);
}

TEST(Losses, SoftBCEWithLogits) {
  auto x = torch::tensor({0.f, 5.f, 0.f});
  auto t = torch::tensor({1.f, -100.f, 0.f});
  // the -100 element is ignored by default but still counts in the mean
  EXPECT_NEAR(value(SoftBCEWithLogitsLoss()(x, t)), 2 * std::log(2.0) / 3, 1e-6);
  SoftBCEWithLogitsLoss pos(SoftBCEWithLogitsLossOptions().pos_weight(torch::tensor({3.f})).reduction("sum"));
  EXPECT_NEAR(value(pos(torch::zeros({1}), torch::ones({1}))), 3 * std::log(2.0), 1e-6);
  // smoothing: target 1 -> 0.9; loss at logit 0 stays ln 2 whatever the target
  SoftBCEWithLogitsLoss smooth(SoftBCEWithLogitsLossOptions().smooth_factor(0.1));
  const double z = 2.0, p = 1 / (1 + std::exp(-z));
  EXPECT_NEAR(value(smooth(torch::full({1}, z), torch::ones({1}))), -(0.9 * std::log(p) + 0.1 * std::log(1 - p)), 1e-6);
  auto names = pos->named_buffers().keys();
  EXPECT_EQ(names, std::vector<std::string>{"pos_weight"});
}

TEST(Losses, SoftCrossEntropy) {
  // one pixel, two classes with probabilities 0.25, 0.75, label 1
  auto logits = torch::tensor({0.f, static_cast<float>(std::log(3.0))}).reshape({1, 2, 1, 1});
  auto label = torch::ones({1, 1, 1}, torch::kLong);
  const double nll = -std::log(0.75), all = -(std::log(0.25) + std::log(0.75));
  SoftCrossEntropyLoss ce(SoftCrossEntropyLossOptions().smooth_factor(0.2));
  EXPECT_NEAR(value(ce(logits, label)), 0.8 * nll + 0.1 * all, 1e-6);
  // without smoothing: plain cross entropy
  EXPECT_NEAR(value(SoftCrossEntropyLoss()(logits, label)), nll, 1e-6);
  // reduction none keeps the class dimension when ignore_index is set (as smp), not otherwise
  auto none = SoftCrossEntropyLoss(SoftCrossEntropyLossOptions().reduction("none").smooth_factor(0.0))(logits, label);
  EXPECT_EQ(none.sizes(), torch::IntArrayRef({1, 1, 1, 1}));
  auto no_ignore = SoftCrossEntropyLoss(
      SoftCrossEntropyLossOptions().reduction("none").smooth_factor(0.0).ignore_index(std::nullopt))(logits, label);
  EXPECT_EQ(no_ignore.sizes(), torch::IntArrayRef({1, 1, 1}));
}

TEST(Losses, MCC) {
  auto t = torch::tensor({1.f, 0.f, 1.f, 0.f}).reshape({1, 1, 2, 2});
  const double eps = 1e-5;
  EXPECT_NEAR(value(MCCLoss()(t, t)), eps / (1 + eps), 1e-7);  // perfect prediction
  auto half = torch::tensor({1.f, 0.f, 0.f, 1.f}).reshape({1, 1, 2, 2});
  EXPECT_NEAR(value(MCCLoss()(half, t)), 1.0, 1e-6);  // uncorrelated
}

TEST(Losses, CombinedLossIsTheWeightedSum) {
  CombinedLoss combined(
      std::vector<std::pair<Loss, double>>{{DiceLoss(DiceLossOptions("binary").from_logits(false)).ptr(), 1.0},
                                           {JaccardLoss(JaccardLossOptions("binary").from_logits(false)).ptr(), 0.5}});
  EXPECT_NEAR(value(combined(probs(), truth())), 0.4 + 0.5 * (1 - 1.2 / 2.8), 1e-6);
  EXPECT_EQ(combined->named_children().keys(), (std::vector<std::string>{"0", "1"}));
  EXPECT_NE(error_of([] { CombinedLoss(std::vector<std::pair<Loss, double>>{}); }).find("at least one"),
            std::string::npos);
}

TEST(Losses, FactoryBuildsFromJsonAndWords) {
  auto dice = create_loss("DiceLoss", json{{"mode", "binary"}, {"from_logits", false}});
  EXPECT_NEAR(value(dice->forward(probs(), truth())), 0.4, 1e-6);
  auto words =
      create_loss("DiceLoss", std::vector<std::string>{"mode=multiclass", "classes=[0,2]", "ignore_index=255"});
  auto* impl = dynamic_cast<DiceLossImpl*>(words.get());
  ASSERT_NE(impl, nullptr);
  EXPECT_EQ(impl->options.classes(), (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(impl->options.ignore_index(), 255);

  const auto spec = json::parse(R"({"losses": [
      {"class": "DiceLoss", "options": {"mode": "binary", "from_logits": false}},
      {"class": "SoftBCEWithLogitsLoss", "options": {"pos_weight": [2.0]}, "weight": 0.5}]})");
  auto combined = create_loss("CombinedLoss", spec);
  EXPECT_EQ(combined->named_buffers().keys(), std::vector<std::string>{"1.pos_weight"});
  auto x = probs();
  const double bce = torch::binary_cross_entropy_with_logits(x, truth(), {}, torch::tensor({2.f})).item<double>();
  EXPECT_NEAR(value(combined->forward(x, truth())), 0.4 + 0.5 * bce, 1e-6);

  // None for optional keywords, and reduction=None means no reduction
  auto focal = create_loss("FocalLoss", json::parse(R"({"mode": "binary", "alpha": null, "reduction": null})"));
  EXPECT_EQ(focal->forward(torch::zeros({2, 1, 2, 2}), torch::ones({2, 1, 2, 2})).sizes(), torch::IntArrayRef({8}));
  EXPECT_EQ(list_losses().size(), 9u);
  EXPECT_EQ(loss_option_names("MCCLoss"), std::vector<std::string>{"eps"});
}

TEST(Losses, FactoryErrorsListTheValidNames) {
  auto msg = error_of([] { create_loss("DiceLos", json::object()); });
  EXPECT_NE(msg.find("Unknown loss 'DiceLos'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("DiceLoss"), std::string::npos) << msg;
  EXPECT_NE(msg.find("SoftCrossEntropyLoss"), std::string::npos) << msg;

  msg = error_of([] { create_loss("DiceLoss", json{{"mode", "binary"}, {"smoth", 1.0}}); });
  EXPECT_NE(msg.find("Unknown option 'smoth'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("smooth"), std::string::npos) << msg;
  EXPECT_NE(msg.find("class_weights"), std::string::npos) << msg;

  msg = error_of([] { create_loss("JaccardLoss", json::object()); });
  EXPECT_NE(msg.find("missing required option 'mode'"), std::string::npos) << msg;
  msg = error_of([] { create_loss("FocalLoss", json{{"mode", "binary"}, {"gamma", "two"}}); });
  EXPECT_NE(msg.find("option 'gamma' expects a number"), std::string::npos) << msg;
  msg = error_of([] {
    create_loss("CombinedLoss", json{{"losses", json::array({json{{"class", "MCCLoss"}, {"w", 1}}})}});
  });
  EXPECT_NE(msg.find("Unknown option 'w'"), std::string::npos) << msg;
}

TEST(Losses, OptionValidation) {
  auto msg = error_of([] { DiceLoss("binar"); });
  EXPECT_NE(msg.find("mode should be one of binary, multiclass, multilabel"), std::string::npos) << msg;
  msg = error_of([] { DiceLoss(DiceLossOptions("binary").class_weights(std::vector<double>{1.0})); });
  EXPECT_NE(msg.find("class_weights are not supported with mode=binary"), std::string::npos) << msg;
  msg = error_of([] { JaccardLoss(JaccardLossOptions("binary").classes(std::vector<int64_t>{0})); });
  EXPECT_NE(msg.find("not supported with mode=binary"), std::string::npos) << msg;
  msg = error_of([] { FocalLoss(FocalLossOptions("binary").class_weights(std::vector<double>{1.0})); });
  EXPECT_NE(msg.find("class_weights are not supported"), std::string::npos) << msg;
  msg = error_of([] { FocalLoss(FocalLossOptions("multiclass").reduction("avg")); });
  EXPECT_NE(msg.find("reduction should be one of mean, sum, batchwise_mean, none"), std::string::npos) << msg;
  msg = error_of([] { SoftBCEWithLogitsLoss(SoftBCEWithLogitsLossOptions().reduction("batchwise_mean")); });
  EXPECT_NE(msg.find("reduction should be one of mean, sum, none"), std::string::npos) << msg;
  msg = error_of([] { DiceLoss("binary")(torch::zeros({2, 1, 2, 2}), torch::zeros({3, 1, 2, 2})); });
  EXPECT_NE(msg.find("same batch size"), std::string::npos) << msg;
}

// Every reference loss case, run directly (value and gradient).
TEST(Losses, ReferenceFixturesPass) {
  namespace fs = std::filesystem;
  const auto root = fs::path(SMP_TEST_DATA) / "fixtures" / "losses";
  int cases = 0;
  for (const auto& dir : smp::conformance::find_cases(root.string())) {
    std::ifstream in(fs::path(dir) / "case.json");
    const auto spec = json::parse(in);
    const auto r = smp::conformance::run_loss_case(dir, spec);
    EXPECT_EQ(r.status, smp::conformance::Status::kPass) << dir << ": " << r.message;
    ++cases;
  }
  EXPECT_EQ(cases, 34);
}

}  // namespace
