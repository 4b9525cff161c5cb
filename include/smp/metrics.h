// Confusion-matrix metrics of smp.metrics: per-image, per-class tp/fp/fn/tn counts and the scores
// computed from them under smp's reductions.
#pragma once

#include <torch/torch.h>

#include <optional>
#include <string>
#include <vector>

namespace smp::metrics {

// int64 counts, each [N, C].
struct Stats {
  torch::Tensor tp, fp, fn, tn;
};

// smp.metrics.get_stats. mode: "binary" (output/target [N, 1, ...]), "multilabel" ([N, C, ...]) or
// "multiclass" (int64 labels [N, ...], needs num_classes; ignore_index, outside 0..num_classes-1,
// marks pixels that count for nothing). A floating-point output needs `threshold` (binary and
// multilabel only): output and target are both binarised by `>= threshold`. Throws
// std::invalid_argument on a misconfiguration, as smp raises ValueError.
Stats get_stats(const torch::Tensor& output, const torch::Tensor& target, const std::string& mode,
                std::optional<double> threshold = std::nullopt, std::optional<int64_t> ignore_index = std::nullopt,
                std::optional<int64_t> num_classes = std::nullopt);

// The score used where a ratio is 0/0 (everywhere except the "micro" reduction, as in smp).
// warn() acts as 0 and logs a warning when it is used.
class ZeroDivision {
 public:
  /* implicit */ ZeroDivision(double value = 1.0) : value_(value) {}
  static ZeroDivision warn() {
    ZeroDivision z(0.0);
    z.warn_ = true;
    return z;
  }
  double value() const { return value_; }
  bool is_warn() const { return warn_; }

 private:
  double value_;
  bool warn_ = false;
};

struct MetricOptions {
  // "micro", "macro", "weighted", "micro-imagewise", "macro-imagewise", "weighted-imagewise" or
  // "none" (smp's None: the [N, C] scores). Reduced results are 0-dimensional.
  TORCH_ARG(std::string, reduction) = "none";
  // Required by the weighted reductions; normalised to sum 1. Like smp, "macro" and
  // "macro-imagewise" also scale by them when given.
  TORCH_ARG(std::optional<std::vector<double>>, class_weights) = std::nullopt;
  TORCH_ARG(ZeroDivision, zero_division) = 1.0;
};

// The reductions above, in that order.
const std::vector<std::string>& reductions();

torch::Tensor fbeta_score(const Stats& stats, double beta = 1.0, const MetricOptions& options = {});
torch::Tensor f1_score(const Stats& stats, const MetricOptions& options = {});
torch::Tensor iou_score(const Stats& stats, const MetricOptions& options = {});
torch::Tensor accuracy(const Stats& stats, const MetricOptions& options = {});
torch::Tensor precision(const Stats& stats, const MetricOptions& options = {});  // = positive_predictive_value
torch::Tensor recall(const Stats& stats, const MetricOptions& options = {});     // = sensitivity
torch::Tensor sensitivity(const Stats& stats, const MetricOptions& options = {});
torch::Tensor specificity(const Stats& stats, const MetricOptions& options = {});
torch::Tensor balanced_accuracy(const Stats& stats, const MetricOptions& options = {});
torch::Tensor positive_predictive_value(const Stats& stats, const MetricOptions& options = {});
torch::Tensor negative_predictive_value(const Stats& stats, const MetricOptions& options = {});
torch::Tensor false_negative_rate(const Stats& stats, const MetricOptions& options = {});
torch::Tensor false_positive_rate(const Stats& stats, const MetricOptions& options = {});
torch::Tensor false_discovery_rate(const Stats& stats, const MetricOptions& options = {});
torch::Tensor false_omission_rate(const Stats& stats, const MetricOptions& options = {});
torch::Tensor positive_likelihood_ratio(const Stats& stats, const MetricOptions& options = {});
torch::Tensor negative_likelihood_ratio(const Stats& stats, const MetricOptions& options = {});

// Every function above by its smp name (fbeta_score with beta = 1), for command lines and the
// conformance runner; an unknown name throws std::invalid_argument listing the valid ones.
const std::vector<std::string>& metric_names();
torch::Tensor compute_metric(const std::string& name, const Stats& stats, const MetricOptions& options = {});

}  // namespace smp::metrics
