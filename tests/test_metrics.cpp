// Metrics: get_stats on hand-made inputs and its argument errors, every reduction on counts whose
// scores are worked out by hand (zero division included), and the reference fixtures run directly.
#include <gtest/gtest.h>
#include <smp/conformance.h>
#include <smp/log.h>
#include <smp/metrics.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "conformance/kinds.h"
#include "support.h"

using namespace smp::test;

namespace {

using namespace smp::metrics;

torch::Tensor longs(std::vector<int64_t> v, torch::IntArrayRef shape) {
  return torch::tensor(v, torch::kLong).reshape(shape);
}

std::vector<int64_t> values(const torch::Tensor& t) {
  auto c = t.contiguous().to(torch::kLong);
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

TEST(Metrics, GetStatsBinaryWithThreshold) {
  auto output = torch::tensor({0.2f, 0.7f, 0.5f, 0.9f}).reshape({1, 1, 4});
  auto target = longs({0, 1, 1, 0}, {1, 1, 4});
  auto s = get_stats(output, target, "binary", 0.5);
  EXPECT_EQ(values(s.tp), std::vector<int64_t>{2});
  EXPECT_EQ(values(s.fp), std::vector<int64_t>{1});
  EXPECT_EQ(values(s.fn), std::vector<int64_t>{0});
  EXPECT_EQ(values(s.tn), std::vector<int64_t>{1});
  EXPECT_EQ(s.tp.sizes(), torch::IntArrayRef({1, 1}));
  EXPECT_EQ(s.tp.scalar_type(), torch::kLong);
}

TEST(Metrics, GetStatsMultilabelCountsPerImageAndClass) {
  auto output = longs({1, 0, 1, 1, /**/ 0, 0, 0, 0, /**/ 1, 1, 0, 0, /**/ 1, 1, 1, 1}, {2, 2, 4});
  auto target = longs({1, 1, 0, 1, /**/ 0, 0, 0, 1, /**/ 1, 0, 0, 0, /**/ 1, 1, 1, 1}, {2, 2, 4});
  auto s = get_stats(output, target, "multilabel");
  EXPECT_EQ(values(s.tp), (std::vector<int64_t>{2, 0, 1, 4}));
  EXPECT_EQ(values(s.fp), (std::vector<int64_t>{1, 0, 1, 0}));
  EXPECT_EQ(values(s.fn), (std::vector<int64_t>{1, 1, 0, 0}));
  EXPECT_EQ(values(s.tn), (std::vector<int64_t>{0, 3, 2, 0}));
}

TEST(Metrics, GetStatsMulticlassWithIgnoreIndex) {
  auto output = longs({0, 1, 2, 2, 0, 2}, {1, 6});
  auto target = longs({0, 1, 1, 2, 255, 0}, {1, 6});
  auto s = get_stats(output, target, "multiclass", std::nullopt, 255, 3);
  // the fifth pixel is ignored; of the rest, class 2 is predicted twice wrongly
  EXPECT_EQ(values(s.tp), (std::vector<int64_t>{1, 1, 1}));
  EXPECT_EQ(values(s.fp), (std::vector<int64_t>{0, 0, 2}));
  EXPECT_EQ(values(s.fn), (std::vector<int64_t>{1, 1, 0}));
  EXPECT_EQ(values(s.tn), (std::vector<int64_t>{3, 3, 2}));
}

TEST(Metrics, GetStatsArgumentErrors) {
  auto ints = longs({0, 1, 1, 0}, {1, 1, 4});
  auto floats = ints.to(torch::kFloat);
  EXPECT_NE(error_of([&] { get_stats(ints, floats, "binary"); }).find("target should have an integer dtype"),
            std::string::npos);
  EXPECT_NE(error_of([&] { get_stats(floats, ints, "binary"); }).find("needs a threshold"), std::string::npos);
  EXPECT_NE(error_of([&] { get_stats(floats, ints, "multiclass", 0.5, std::nullopt, 2); }).find("integer labels"),
            std::string::npos);
  EXPECT_NE(error_of([&] { get_stats(ints, ints, "multi"); }).find("mode should be one of"), std::string::npos);
  EXPECT_NE(error_of([&] { get_stats(ints[0], ints[0], "multiclass", 0.5, std::nullopt, 2); }).find("threshold"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              get_stats(ints, ints.reshape({1, 4, 1}), "binary");
            }).find("differs from target shape"),
            std::string::npos);
  EXPECT_NE(error_of([&] { get_stats(ints, ints, "binary", std::nullopt, -1); }).find("ignore_index is not supported"),
            std::string::npos);
  EXPECT_NE(error_of([&] { get_stats(ints[0], ints[0], "multiclass"); }).find("num_classes is required"),
            std::string::npos);
  EXPECT_NE(error_of([&] { get_stats(ints[0], ints[0], "multiclass", std::nullopt, 1, 2); }).find("outside the class"),
            std::string::npos);
}

// Two images, two classes. IoU per (image, class): 2/4, 0/0, 1/3, 3/4.
Stats hand_stats() {
  return {longs({2, 0, 1, 3}, {2, 2}), longs({1, 0, 0, 1}, {2, 2}), longs({1, 0, 2, 0}, {2, 2}),
          longs({4, 8, 5, 4}, {2, 2})};
}

double iou(const std::string& reduction, std::optional<std::vector<double>> weights = std::nullopt,
           ZeroDivision zd = 1.0) {
  auto r = iou_score(hand_stats(), MetricOptions().reduction(reduction).class_weights(weights).zero_division(zd));
  EXPECT_EQ(r.dim(), 0) << reduction;
  EXPECT_EQ(r.scalar_type(), torch::kFloat) << reduction;
  return r.item<double>();
}

TEST(Metrics, EveryReductionOfIoU) {
  const std::vector<double> w = {1.0, 3.0};  // normalised to 0.25, 0.75
  EXPECT_NEAR(iou("micro"), 6.0 / 11, 1e-6);
  EXPECT_NEAR(iou("macro"), (3.0 / 7 + 3.0 / 4) / 2, 1e-6);
  EXPECT_NEAR(iou("weighted", w), 0.25 * 3.0 / 7 + 0.75 * 3.0 / 4, 1e-6);
  // smp scales by the normalised weights in "macro" too, then takes the mean
  EXPECT_NEAR(iou("macro", w), (0.25 * 3.0 / 7 + 0.75 * 3.0 / 4) / 2, 1e-6);
  EXPECT_NEAR(iou("micro-imagewise"), (2.0 / 4 + 4.0 / 7) / 2, 1e-6);
  // 0/0 for image 0, class 1 becomes zero_division
  EXPECT_NEAR(iou("macro-imagewise"), ((0.5 + 1.0 / 3) / 2 + (1.0 + 0.75) / 2) / 2, 1e-6);
  EXPECT_NEAR(iou("macro-imagewise", std::nullopt, 0.0), ((0.5 + 1.0 / 3) / 2 + (0.0 + 0.75) / 2) / 2, 1e-6);
  EXPECT_NEAR(iou("weighted-imagewise", w), (0.25 * (0.5 + 1.0 / 3) / 2 + 0.75 * (1.0 + 0.75) / 2) / 2, 1e-6);
  auto none = iou_score(hand_stats(), MetricOptions().zero_division(0.5));
  ASSERT_EQ(none.sizes(), torch::IntArrayRef({2, 2}));
  EXPECT_NEAR(none[0][1].item<double>(), 0.5, 1e-7);
  EXPECT_NEAR(none[1][0].item<double>(), 1.0 / 3, 1e-7);
}

TEST(Metrics, MicroKeepsZeroDivisionAsNaN) {
  Stats empty{longs({0}, {1, 1}), longs({0}, {1, 1}), longs({0}, {1, 1}), longs({4}, {1, 1})};
  EXPECT_TRUE(std::isnan(iou_score(empty, MetricOptions().reduction("micro")).item<double>()));
  EXPECT_EQ(iou_score(empty, MetricOptions().reduction("macro")).item<double>(), 1.0);
}

TEST(Metrics, ZeroDivisionWarnActsAsZeroAndLogs) {
  Stats empty{longs({0}, {1, 1}), longs({0}, {1, 1}), longs({0}, {1, 1}), longs({4}, {1, 1})};
  smp::log::Capture capture;
  auto r = precision(empty, MetricOptions().reduction("macro").zero_division(ZeroDivision::warn()));
  EXPECT_EQ(r.item<double>(), 0.0);
  ASSERT_EQ(capture.lines().size(), 1u);
  EXPECT_EQ(capture.lines()[0].first, "WARN");
  EXPECT_NE(capture.lines()[0].second.find("Zero division"), std::string::npos);
}

TEST(Metrics, ScoresFromOneConfusionMatrix) {
  // tp 2, fp 1, fn 1, tn 4
  Stats s{longs({2}, {1, 1}), longs({1}, {1, 1}), longs({1}, {1, 1}), longs({4}, {1, 1})};
  const auto v = [&](const std::string& name) {
    return compute_metric(name, s, MetricOptions().reduction("micro")).item<double>();
  };
  EXPECT_NEAR(v("f1_score"), 4.0 / 6, 1e-6);
  EXPECT_NEAR(fbeta_score(s, 2.0, MetricOptions().reduction("micro")).item<double>(), 10.0 / 15, 1e-6);
  EXPECT_NEAR(v("accuracy"), 6.0 / 8, 1e-6);
  EXPECT_NEAR(v("precision"), 2.0 / 3, 1e-6);
  EXPECT_NEAR(v("recall"), 2.0 / 3, 1e-6);
  EXPECT_NEAR(v("specificity"), 4.0 / 5, 1e-6);
  EXPECT_NEAR(v("balanced_accuracy"), (2.0 / 3 + 4.0 / 5) / 2, 1e-6);
  EXPECT_NEAR(v("negative_predictive_value"), 4.0 / 5, 1e-6);
  EXPECT_NEAR(v("false_negative_rate"), 1.0 / 3, 1e-6);
  EXPECT_NEAR(v("false_positive_rate"), 1.0 / 5, 1e-6);
  EXPECT_NEAR(v("false_discovery_rate"), 1.0 / 3, 1e-6);
  EXPECT_NEAR(v("false_omission_rate"), 1.0 / 5, 1e-6);
  EXPECT_NEAR(v("positive_likelihood_ratio"), (2.0 / 3) / (1.0 / 5), 1e-5);
  EXPECT_NEAR(v("negative_likelihood_ratio"), (1.0 / 3) / (4.0 / 5), 1e-6);
  // a ratio with a zero denominator but non-zero numerator stays infinite (only 0/0 is replaced)
  Stats no_fp{longs({2}, {1, 1}), longs({0}, {1, 1}), longs({1}, {1, 1}), longs({4}, {1, 1})};
  EXPECT_TRUE(std::isinf(positive_likelihood_ratio(no_fp, MetricOptions().reduction("macro")).item<double>()));
  EXPECT_EQ(metric_names().size(), 17u);
}

TEST(Metrics, ReductionAndNameErrors) {
  auto msg = error_of([] { iou_score(hand_stats(), MetricOptions().reduction("weighted")); });
  EXPECT_NE(msg.find("Class weights should be provided"), std::string::npos) << msg;
  msg = error_of([] { iou_score(hand_stats(), MetricOptions().reduction("macro_imagewise")); });
  EXPECT_NE(msg.find("Unknown metric reduction"), std::string::npos) << msg;
  EXPECT_NE(msg.find("macro-imagewise"), std::string::npos) << msg;
  msg = error_of([] { compute_metric("iou", hand_stats()); });
  EXPECT_NE(msg.find("Unknown metric 'iou'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("iou_score"), std::string::npos) << msg;
}

TEST(Metrics, ReferenceFixturesPass) {
  namespace fs = std::filesystem;
  const auto root = fs::path(SMP_TEST_DATA) / "fixtures" / "metrics";
  int cases = 0;
  for (const auto& dir : smp::conformance::find_cases(root.string())) {
    std::ifstream in(fs::path(dir) / "case.json");
    const auto r = smp::conformance::run_metric_case(dir, nlohmann::json::parse(in));
    EXPECT_EQ(r.status, smp::conformance::Status::kPass) << dir << ": " << r.message;
    ++cases;
  }
  EXPECT_EQ(cases, 6);
}

}  // namespace
