#include <fmt/format.h>
#include <smp/losses.h>

#include <stdexcept>

#include "losses/functional.h"
#include "util/strings.h"

namespace smp::losses {

using torch::Tensor;

namespace {

void check_choice(const std::string& cls, const std::string& key, const std::string& value,
                  const std::vector<std::string>& valid) {
  if (std::find(valid.begin(), valid.end(), value) == valid.end())
    throw std::invalid_argument(
        fmt::format("{}: {} should be one of {}, got '{}'", cls, key, util::join(valid, ", "), value));
}

void check_mode(const std::string& cls, const std::string& mode) {
  check_choice(cls, "mode", mode, {BINARY_MODE, MULTICLASS_MODE, MULTILABEL_MODE});
}

void check_batch(const std::string& cls, const Tensor& y_pred, const Tensor& y_true) {
  if (y_pred.dim() == 0 || y_true.dim() == 0 || y_pred.size(0) != y_true.size(0))
    throw std::invalid_argument(fmt::format("{}: y_pred [{}] and y_true [{}] need the same batch size", cls,
                                            fmt::join(y_pred.sizes(), ", "), fmt::join(y_true.sizes(), ", ")));
}

Tensor weights_tensor(const std::vector<double>& w, const Tensor& like) {
  return torch::tensor(w, torch::kFloat).to(like.device());  // float32, as smp stores them
}

Tensor classes_tensor(const std::vector<int64_t>& c, const Tensor& like) {
  return torch::tensor(c, torch::kLong).to(like.device());
}

// What Dice, Jaccard and Tversky share: a soft Tversky score per class, turned into a loss,
// zeroed for classes absent from y_true, then averaged (optionally weighted, raised to gamma).
struct RegionLoss {
  std::string cls;
  std::string mode;
  std::optional<std::vector<int64_t>> classes;
  bool log_loss;
  bool from_logits;
  double smooth;
  std::optional<int64_t> ignore_index;
  double eps;
  double alpha, beta;
  std::optional<double> gamma;
  std::optional<std::vector<double>> class_weights;

  void validate() const {
    check_mode(cls, mode);
    if (class_weights && mode == BINARY_MODE)
      throw std::invalid_argument(cls + ": class_weights are not supported with mode=binary");
    if (classes && mode == BINARY_MODE)
      throw std::invalid_argument(cls + ": masking classes is not supported with mode=binary");
  }

  Tensor operator()(Tensor y_pred, Tensor y_true) const {
    check_batch(cls, y_pred, y_true);
    if (from_logits) {
      // log-exp keeps the gradient from vanishing at saturated probabilities
      y_pred = mode == MULTICLASS_MODE ? y_pred.log_softmax(1).exp() : torch::log_sigmoid(y_pred).exp();
    }
    const int64_t bs = y_true.size(0);
    const int64_t num_classes = y_pred.size(1);
    if (mode == MULTICLASS_MODE) {
      y_true = y_true.reshape({bs, -1});
      y_pred = y_pred.reshape({bs, num_classes, -1});
      if (ignore_index) {
        const auto mask = y_true != *ignore_index;
        y_pred = y_pred * mask.unsqueeze(1);
        y_true = torch::one_hot((y_true * mask).to(torch::kLong), num_classes).permute({0, 2, 1}) * mask.unsqueeze(1);
      } else {
        y_true = torch::one_hot(y_true, num_classes).permute({0, 2, 1});
      }
    } else {
      const int64_t channels = mode == BINARY_MODE ? 1 : num_classes;
      y_true = y_true.reshape({bs, channels, -1});
      y_pred = y_pred.reshape({bs, channels, -1});
      if (ignore_index) {
        const auto mask = y_true != *ignore_index;
        y_pred = y_pred * mask;
        y_true = y_true * mask;
      }
    }
    const std::vector<int64_t> dims = {0, 2};
    const auto scores =
        functional::soft_tversky_score(y_pred, y_true.to(y_pred.scalar_type()), alpha, beta, smooth, eps, dims);
    auto loss = log_loss ? -torch::log(scores.clamp_min(eps)) : 1.0 - scores;
    // The score is undefined for a class without true pixels: such classes contribute zero.
    loss = loss * (y_true.sum(dims) > 0).to(loss.scalar_type());
    Tensor index;
    if (classes) {
      index = classes_tensor(*classes, loss);
      loss = loss.index({index});
    }
    Tensor result;
    if (class_weights) {
      auto w = weights_tensor(*class_weights, loss);
      if (classes) w = w.index({index});
      result = (loss * w).sum() / w.sum();
    } else {
      result = loss.mean();
    }
    return gamma ? result.pow(*gamma) : result;
  }
};

}  // namespace

// ---- Dice / Jaccard / Tversky ----

DiceLossImpl::DiceLossImpl(const DiceLossOptions& o) : options(o) {
  RegionLoss{"DiceLoss",       o.mode(), o.classes(), o.log_loss(), o.from_logits(), o.smooth(),
             o.ignore_index(), o.eps(),  0.5,         0.5,          std::nullopt,    o.class_weights()}
      .validate();
}

Tensor DiceLossImpl::forward(const Tensor& y_pred, const Tensor& y_true) {
  const auto& o = options;
  return RegionLoss{"DiceLoss",       o.mode(), o.classes(), o.log_loss(), o.from_logits(), o.smooth(),
                    o.ignore_index(), o.eps(),  0.5,         0.5,          std::nullopt,    o.class_weights()}(y_pred,
                                                                                                               y_true);
}

JaccardLossImpl::JaccardLossImpl(const JaccardLossOptions& o) : options(o) {
  RegionLoss{"JaccardLoss",    o.mode(), o.classes(), o.log_loss(), o.from_logits(), o.smooth(),
             o.ignore_index(), o.eps(),  1.0,         1.0,          std::nullopt,    o.class_weights()}
      .validate();
}

Tensor JaccardLossImpl::forward(const Tensor& y_pred, const Tensor& y_true) {
  const auto& o = options;
  return RegionLoss{"JaccardLoss",    o.mode(), o.classes(), o.log_loss(), o.from_logits(), o.smooth(),
                    o.ignore_index(), o.eps(),  1.0,         1.0,          std::nullopt,    o.class_weights()}(y_pred,
                                                                                                               y_true);
}

TverskyLossImpl::TverskyLossImpl(const TverskyLossOptions& o) : options(o) {
  RegionLoss{"TverskyLoss",    o.mode(), o.classes(), o.log_loss(), o.from_logits(), o.smooth(),
             o.ignore_index(), o.eps(),  o.alpha(),   o.beta(),     o.gamma(),       o.class_weights()}
      .validate();
}

Tensor TverskyLossImpl::forward(const Tensor& y_pred, const Tensor& y_true) {
  const auto& o = options;
  return RegionLoss{"TverskyLoss",    o.mode(), o.classes(), o.log_loss(), o.from_logits(), o.smooth(),
                    o.ignore_index(), o.eps(),  o.alpha(),   o.beta(),     o.gamma(),       o.class_weights()}(y_pred,
                                                                                                               y_true);
}

// ---- Focal ----

FocalLossImpl::FocalLossImpl(const FocalLossOptions& o) : options(o) {
  check_mode("FocalLoss", o.mode());
  check_choice("FocalLoss", "reduction", o.reduction(), {"mean", "sum", "batchwise_mean", "none"});
  if (o.class_weights() && o.mode() == BINARY_MODE)
    throw std::invalid_argument("FocalLoss: class_weights are not supported with mode=binary");
}

Tensor FocalLossImpl::forward(const Tensor& y_pred_in, const Tensor& y_true_in) {
  const auto& o = options;
  Tensor y_pred = y_pred_in, y_true = y_true_in;
  if (!o.from_logits()) {
    y_pred = torch::clamp(y_pred, o.eps(), 1 - o.eps());
    // back to logits (inverse sigmoid), or to log-probabilities for softmax outputs
    y_pred = o.mode() == MULTICLASS_MODE ? torch::log(y_pred) : torch::log(y_pred / (1 - y_pred));
  }
  const auto focal = [&o](const Tensor& pred, const Tensor& target) {
    return functional::focal_loss_with_logits(pred, target, o.gamma(), o.alpha(), o.reduction(), o.normalized(),
                                              o.reduced_threshold());
  };
  if (o.mode() == BINARY_MODE) {
    y_true = y_true.reshape(-1);
    y_pred = y_pred.reshape(-1);
    if (o.ignore_index()) {
      const auto keep = y_true != *o.ignore_index();
      y_pred = y_pred.index({keep});
      y_true = y_true.index({keep});
    }
    return focal(y_pred, y_true);
  }
  const int64_t num_classes = y_pred.size(1);
  Tensor keep;
  if (o.ignore_index()) keep = y_true != *o.ignore_index();
  std::vector<Tensor> class_losses;
  for (int64_t c = 0; c < num_classes; ++c) {
    auto cls_true = o.mode() == MULTICLASS_MODE ? (y_true == c).to(torch::kLong) : y_true.select(1, c);
    auto cls_pred = y_pred.select(1, c);
    if (keep.defined()) {
      cls_true = cls_true.index({keep});
      cls_pred = cls_pred.index({keep});
    }
    class_losses.push_back(focal(cls_pred, cls_true));
  }
  const auto losses = torch::stack(class_losses);
  if (!o.class_weights()) return losses.mean();
  const auto w = weights_tensor(*o.class_weights(), losses);
  return (losses * w).sum() / w.sum();
}

// ---- Lovasz ----

LovaszLossImpl::LovaszLossImpl(const LovaszLossOptions& o) : options(o) { check_mode("LovaszLoss", o.mode()); }

Tensor LovaszLossImpl::forward(const Tensor& y_pred, const Tensor& y_true) {
  if (options.mode() == MULTICLASS_MODE)
    return functional::lovasz_softmax(y_pred.softmax(1), y_true, options.per_image(), options.ignore_index());
  return functional::lovasz_hinge(y_pred, y_true, options.per_image(), options.ignore_index());
}

// ---- SoftBCEWithLogits ----

SoftBCEWithLogitsLossImpl::SoftBCEWithLogitsLossImpl(const SoftBCEWithLogitsLossOptions& o) : options(o) {
  check_choice("SoftBCEWithLogitsLoss", "reduction", o.reduction(), {"mean", "sum", "none"});
  // Buffers (as in smp), so that to(device) moves them; options keep what was given.
  if (o.weight().defined()) weight_ = register_buffer("weight", o.weight());
  if (o.pos_weight().defined()) pos_weight_ = register_buffer("pos_weight", o.pos_weight());
}

Tensor SoftBCEWithLogitsLossImpl::forward(const Tensor& y_pred, const Tensor& y_true) {
  const auto& o = options;
  const auto soft_targets =
      o.smooth_factor() ? (1 - y_true) * *o.smooth_factor() + y_true * (1 - *o.smooth_factor()) : y_true;
  auto loss = torch::binary_cross_entropy_with_logits(y_pred, soft_targets, weight_, pos_weight_, at::Reduction::None);
  if (o.ignore_index()) loss = loss * (y_true != *o.ignore_index()).to(loss.scalar_type());
  if (o.reduction() == "mean") return loss.mean();
  if (o.reduction() == "sum") return loss.sum();
  return loss;
}

// ---- SoftCrossEntropy ----

SoftCrossEntropyLossImpl::SoftCrossEntropyLossImpl(const SoftCrossEntropyLossOptions& o) : options(o) {
  check_choice("SoftCrossEntropyLoss", "reduction", o.reduction(), {"mean", "sum", "none"});
}

Tensor SoftCrossEntropyLossImpl::forward(const Tensor& y_pred, const Tensor& y_true) {
  const auto& o = options;
  return functional::label_smoothed_nll_loss(torch::log_softmax(y_pred, o.dim()), y_true,
                                             o.smooth_factor().value_or(0.0), o.ignore_index(), o.reduction(), o.dim());
}

// ---- MCC ----

MCCLossImpl::MCCLossImpl(const MCCLossOptions& o) : options(o) {}

Tensor MCCLossImpl::forward(const Tensor& y_pred, const Tensor& y_true) {
  check_batch("MCCLoss", y_pred, y_true);
  const int64_t bs = y_true.size(0);
  const auto t = y_true.reshape({bs, 1, -1});
  const auto p = y_pred.reshape({bs, 1, -1});
  const double eps = options.eps();
  const auto tp = torch::sum(p * t) + eps;
  const auto tn = torch::sum((1 - p) * (1 - t)) + eps;
  const auto fp = torch::sum(p * (1 - t)) + eps;
  const auto fn = torch::sum((1 - p) * t) + eps;
  const auto numerator = tp * tn - fp * fn;
  const auto denominator = torch::sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn));
  return 1.0 - numerator.sum() / denominator.sum();
}

// ---- Combined ----

CombinedLossImpl::CombinedLossImpl(std::vector<std::pair<Loss, double>> terms) : terms_(std::move(terms)) {
  if (terms_.empty()) throw std::invalid_argument("CombinedLoss needs at least one loss");
  for (size_t i = 0; i < terms_.size(); ++i) {
    if (!terms_[i].first) throw std::invalid_argument(fmt::format("CombinedLoss: loss {} is null", i));
    register_module(std::to_string(i), terms_[i].first);
  }
}

Tensor CombinedLossImpl::forward(const Tensor& y_pred, const Tensor& y_true) {
  Tensor total;
  for (const auto& [loss, weight] : terms_) {
    auto term = weight * loss->forward(y_pred, y_true);
    total = total.defined() ? total + term : term;
  }
  return total;
}

}  // namespace smp::losses
