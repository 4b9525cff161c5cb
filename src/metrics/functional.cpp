#include <fmt/format.h>
#include <smp/metrics.h>

#include <functional>
#include <stdexcept>

#include "util/log.h"
#include "util/strings.h"

namespace smp::metrics {

namespace {

using torch::Tensor;

std::string shape_str(const Tensor& t) { return fmt::format("[{}]", fmt::join(t.sizes(), ", ")); }

Stats stats_multiclass(const Tensor& output_in, const Tensor& target_in, int64_t num_classes,
                       std::optional<int64_t> ignore_index) {
  torch::NoGradGuard no_grad;
  const int64_t batch = output_in.size(0);
  const int64_t num_elements = output_in[0].numel();
  Tensor output = output_in, target = target_in, ignore_per_sample;
  if (ignore_index) {
    const auto ignore = target == *ignore_index;
    output = output.masked_fill(ignore, -1);
    target = target.masked_fill(ignore, -1);
    ignore_per_sample = ignore.reshape({batch, -1}).sum(1);
  }
  const auto opts = torch::TensorOptions().dtype(torch::kLong).device(output.device());
  Stats s{torch::zeros({batch, num_classes}, opts), torch::zeros({batch, num_classes}, opts),
          torch::zeros({batch, num_classes}, opts), torch::zeros({batch, num_classes}, opts)};
  // histc over [0, C-1] with C bins counts each class value once and drops -1 and other labels.
  const auto hist = [num_classes](const Tensor& x) {
    return torch::histc(x.to(torch::kFloat), num_classes, 0, static_cast<double>(num_classes - 1));
  };
  for (int64_t i = 0; i < batch; ++i) {
    const auto out_i = output[i], tgt_i = target[i];
    const auto tp = hist(torch::where(out_i == tgt_i, tgt_i, torch::full_like(tgt_i, -1)));
    const auto fp = hist(out_i) - tp;
    const auto fn = hist(tgt_i) - tp;
    auto tn = num_elements - tp - fp - fn;
    if (ignore_index) tn = tn - ignore_per_sample[i];
    s.tp[i] = tp.to(torch::kLong);
    s.fp[i] = fp.to(torch::kLong);
    s.fn[i] = fn.to(torch::kLong);
    s.tn[i] = tn.to(torch::kLong);
  }
  return s;
}

Stats stats_multilabel(const Tensor& output_in, const Tensor& target_in) {
  torch::NoGradGuard no_grad;
  const int64_t batch = target_in.size(0), classes = target_in.size(1);
  const int64_t pixels = target_in.dim() > 2 ? target_in[0][0].numel() : 1;
  const auto output = output_in.reshape({batch, classes, -1}).to(torch::kLong);
  const auto target = target_in.reshape({batch, classes, -1}).to(torch::kLong);
  Stats s;
  s.tp = (output * target).sum(2);
  s.fp = output.sum(2) - s.tp;
  s.fn = target.sum(2) - s.tp;
  s.tn = pixels - (s.tp + s.fp + s.fn);
  return s;
}

Tensor handle_zero_division(const Tensor& x, const ZeroDivision& zero_division) {
  const auto nans = torch::isnan(x);
  if (zero_division.is_warn() && nans.any().item<bool>()) log::logger().warn("Zero division in metric calculation!");
  return torch::where(nans, torch::full({}, zero_division.value(), x.options()), x);
}

using MetricFn = std::function<Tensor(const Tensor&, const Tensor&, const Tensor&, const Tensor&)>;

Tensor compute(const MetricFn& fn, const Stats& s, const MetricOptions& o) {
  const auto& red = o.reduction();
  if (!o.class_weights() && red.find("weighted") != std::string::npos)
    throw std::invalid_argument("Class weights should be provided for `" + red + "` reduction");
  // As smp: float32 weights (a scalar 1 when none are given), normalised to sum 1.
  auto weights = o.class_weights() ? torch::tensor(*o.class_weights(), torch::kFloat) : torch::ones({}, torch::kFloat);
  weights = (weights / weights.sum()).to(s.tp.device());
  const auto& zd = o.zero_division();
  if (red == "micro") return fn(s.tp.sum(), s.fp.sum(), s.fn.sum(), s.tn.sum());
  if (red == "macro" || red == "weighted") {
    auto score = handle_zero_division(fn(s.tp.sum(0), s.fp.sum(0), s.fn.sum(0), s.tn.sum(0)), zd) * weights;
    return red == "macro" ? score.mean() : score.sum();
  }
  if (red == "micro-imagewise")
    return handle_zero_division(fn(s.tp.sum(1), s.fp.sum(1), s.fn.sum(1), s.tn.sum(1)), zd).mean();
  if (red == "macro-imagewise" || red == "weighted-imagewise")
    return (handle_zero_division(fn(s.tp, s.fp, s.fn, s.tn), zd).mean(0) * weights).mean();
  if (red == "none") return handle_zero_division(fn(s.tp, s.fp, s.fn, s.tn), zd);
  throw std::invalid_argument("Unknown metric reduction '" + red + "'." + util::did_you_mean(red, reductions()) +
                              " Valid reductions: " + util::join(reductions(), ", "));
}

// The ratios, as smp writes them (int64 / int64 gives the default float dtype).
Tensor sens(const Tensor& tp, const Tensor&, const Tensor& fn, const Tensor&) { return tp / (tp + fn); }
Tensor spec(const Tensor&, const Tensor& fp, const Tensor&, const Tensor& tn) { return tn / (tn + fp); }
Tensor ppv(const Tensor& tp, const Tensor& fp, const Tensor&, const Tensor&) { return tp / (tp + fp); }
Tensor npv(const Tensor&, const Tensor&, const Tensor& fn, const Tensor& tn) { return tn / (tn + fn); }
Tensor fnr(const Tensor& tp, const Tensor& fp, const Tensor& fn, const Tensor& tn) { return 1 - sens(tp, fp, fn, tn); }
Tensor fpr(const Tensor& tp, const Tensor& fp, const Tensor& fn, const Tensor& tn) { return 1 - spec(tp, fp, fn, tn); }

MetricFn fbeta(double beta) {
  return [beta](const Tensor& tp, const Tensor& fp, const Tensor& fn, const Tensor&) {
    const auto beta_tp = (1 + beta * beta) * tp;
    const auto beta_fn = (beta * beta) * fn;
    return beta_tp / (beta_tp + beta_fn + fp);
  };
}

const std::vector<std::pair<std::string, MetricFn>>& table() {
  static const std::vector<std::pair<std::string, MetricFn>> fns = {
      {"fbeta_score", fbeta(1.0)},
      {"f1_score", fbeta(1.0)},
      {"iou_score",
       [](const Tensor& tp, const Tensor& fp, const Tensor& fn, const Tensor&) { return tp / (tp + fp + fn); }},
      {"accuracy", [](const Tensor& tp, const Tensor& fp, const Tensor& fn,
                      const Tensor& tn) { return (tp + tn) / (tp + fp + fn + tn); }},
      {"precision", ppv},
      {"recall", sens},
      {"sensitivity", sens},
      {"specificity", spec},
      {"balanced_accuracy", [](const Tensor& tp, const Tensor& fp, const Tensor& fn,
                               const Tensor& tn) { return (sens(tp, fp, fn, tn) + spec(tp, fp, fn, tn)) / 2; }},
      {"positive_predictive_value", ppv},
      {"negative_predictive_value", npv},
      {"false_negative_rate", fnr},
      {"false_positive_rate", fpr},
      {"false_discovery_rate",
       [](const Tensor& tp, const Tensor& fp, const Tensor& fn, const Tensor& tn) { return 1 - ppv(tp, fp, fn, tn); }},
      {"false_omission_rate",
       [](const Tensor& tp, const Tensor& fp, const Tensor& fn, const Tensor& tn) { return 1 - npv(tp, fp, fn, tn); }},
      {"positive_likelihood_ratio", [](const Tensor& tp, const Tensor& fp, const Tensor& fn,
                                       const Tensor& tn) { return sens(tp, fp, fn, tn) / fpr(tp, fp, fn, tn); }},
      {"negative_likelihood_ratio", [](const Tensor& tp, const Tensor& fp, const Tensor& fn,
                                       const Tensor& tn) { return fnr(tp, fp, fn, tn) / spec(tp, fp, fn, tn); }},
  };
  return fns;
}

}  // namespace

Stats get_stats(const Tensor& output, const Tensor& target, const std::string& mode, std::optional<double> threshold,
                std::optional<int64_t> ignore_index, std::optional<int64_t> num_classes) {
  if (target.is_floating_point())
    throw std::invalid_argument(
        fmt::format("get_stats: target should have an integer dtype, got {}", c10::toString(target.scalar_type())));
  if (output.is_floating_point() && !threshold)
    throw std::invalid_argument(
        fmt::format("get_stats: a floating-point output ({}) needs a threshold", c10::toString(output.scalar_type())));
  if (output.is_floating_point() && mode == "multiclass")
    throw std::invalid_argument(fmt::format("get_stats: multiclass mode needs integer labels as output, got {}",
                                            c10::toString(output.scalar_type())));
  if (mode != "binary" && mode != "multiclass" && mode != "multilabel")
    throw std::invalid_argument("get_stats: mode should be one of binary, multiclass, multilabel, got '" + mode + "'");
  if (mode == "multiclass" && threshold)
    throw std::invalid_argument("get_stats: threshold is not supported in multiclass mode");
  if (output.sizes() != target.sizes())
    throw std::invalid_argument("get_stats: output shape " + shape_str(output) + " differs from target shape " +
                                shape_str(target));
  if (mode != "multiclass" && ignore_index)
    throw std::invalid_argument("get_stats: ignore_index is not supported in " + mode + " mode");
  if (mode == "multiclass" && !num_classes)
    throw std::invalid_argument("get_stats: num_classes is required in multiclass mode");
  if (ignore_index && *ignore_index >= 0 && *ignore_index <= *num_classes - 1)
    throw std::invalid_argument(
        fmt::format("get_stats: ignore_index ({}) must lie outside the class values 0..{}; e.g. subtract 1 from output "
                    "and target to use ignore_index=-1",
                    *ignore_index, *num_classes - 1));
  if (output.dim() < (mode == "multiclass" ? 1 : 2))
    throw std::invalid_argument("get_stats: output of shape " + shape_str(output) + " has too few dimensions for " +
                                mode + " mode");

  if (mode == "multiclass") return stats_multiclass(output, target, *num_classes, ignore_index);
  if (threshold) {
    torch::NoGradGuard no_grad;
    return stats_multilabel((output >= *threshold).to(torch::kLong), (target >= *threshold).to(torch::kLong));
  }
  return stats_multilabel(output, target);
}

const std::vector<std::string>& reductions() {
  static const std::vector<std::string> names = {
      "micro", "macro", "weighted", "micro-imagewise", "macro-imagewise", "weighted-imagewise", "none"};
  return names;
}

const std::vector<std::string>& metric_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& [name, fn] : table()) out.push_back(name);
    return out;
  }();
  return names;
}

torch::Tensor compute_metric(const std::string& name, const Stats& stats, const MetricOptions& options) {
  for (const auto& [n, fn] : table())
    if (n == name) return compute(fn, stats, options);
  throw std::invalid_argument("Unknown metric '" + name + "'." + util::did_you_mean(name, metric_names()) +
                              " Valid metrics: " + util::join(metric_names(), ", "));
}

torch::Tensor fbeta_score(const Stats& s, double beta, const MetricOptions& o) { return compute(fbeta(beta), s, o); }

#define SMP_METRIC(NAME) \
  torch::Tensor NAME(const Stats& s, const MetricOptions& o) { return compute_metric(#NAME, s, o); }
SMP_METRIC(f1_score)
SMP_METRIC(iou_score)
SMP_METRIC(accuracy)
SMP_METRIC(precision)
SMP_METRIC(recall)
SMP_METRIC(sensitivity)
SMP_METRIC(specificity)
SMP_METRIC(balanced_accuracy)
SMP_METRIC(positive_predictive_value)
SMP_METRIC(negative_predictive_value)
SMP_METRIC(false_negative_rate)
SMP_METRIC(false_positive_rate)
SMP_METRIC(false_discovery_rate)
SMP_METRIC(false_omission_rate)
SMP_METRIC(positive_likelihood_ratio)
SMP_METRIC(negative_likelihood_ratio)
#undef SMP_METRIC

}  // namespace smp::metrics
