// Segmentation losses of smp.losses, with smp's keyword names and defaults.
//
// Every loss is a torch::nn::Module whose forward(y_pred, y_true) returns the loss tensor.
// Shapes follow smp: y_pred [N, C, ...] logits (C = 1 for binary); y_true [N, 1, ...] / [N, ...]
// (binary), [N, ...] int64 labels (multiclass) or [N, C, ...] (multilabel).
#pragma once

#include <torch/torch.h>

#include <smp/options.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace smp::losses {

// Modes (smp.losses.constants).
inline constexpr const char* BINARY_MODE = "binary";
inline constexpr const char* MULTICLASS_MODE = "multiclass";
inline constexpr const char* MULTILABEL_MODE = "multilabel";

// Common base, so that losses can be combined and built by name.
class LossImpl : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(const torch::Tensor& y_pred, const torch::Tensor& y_true) = 0;
};
using Loss = std::shared_ptr<LossImpl>;

// smp's required first argument of the losses that take one: binary, multiclass or multilabel.
#define SMP_LOSS_MODE(OPTIONS)                                             \
  /* implicit */ OPTIONS(std::string mode) : mode_(std::move(mode)) {}   \
  TORCH_ARG(std::string, mode)

// The options Dice, Jaccard and Tversky share, with smp's names and defaults (list entries, smp/options.h).
#define SMP_REGION_LOSS_OPTIONS(OPTION)                                                  \
  /* channels that contribute to the loss (not with binary mode); nullopt = all */       \
  OPTION(std::optional<std::vector<int64_t>>, classes, std::nullopt)                     \
  OPTION(bool, log_loss, false) /* -log(score) instead of 1 - score */                   \
  OPTION(bool, from_logits, true)                                                        \
  OPTION(double, smooth, 0.0)                                                            \
  OPTION(std::optional<int64_t>, ignore_index, std::nullopt)                             \
  OPTION(double, eps, 1e-7)

// ---- Dice ----
#define SMP_DICE_LOSS_OPTIONS(OPTION, KWARG)                                              \
  SMP_REGION_LOSS_OPTIONS(OPTION)                                                         \
  /* One weight per class (not with binary mode); the per-class losses' weighted mean. */ \
  OPTION(std::optional<std::vector<double>>, class_weights, std::nullopt)
struct DiceLossOptions {
  SMP_LOSS_MODE(DiceLossOptions);
  SMP_OPTIONS(SMP_DICE_LOSS_OPTIONS)
};

class DiceLossImpl : public LossImpl {
 public:
  explicit DiceLossImpl(const DiceLossOptions& options);
  explicit DiceLossImpl(std::string mode) : DiceLossImpl(DiceLossOptions(std::move(mode))) {}
  torch::Tensor forward(const torch::Tensor& y_pred, const torch::Tensor& y_true) override;
  DiceLossOptions options;
};
TORCH_MODULE(DiceLoss);

// ---- Jaccard ----
#define SMP_JACCARD_LOSS_OPTIONS(OPTION, KWARG)                           \
  SMP_REGION_LOSS_OPTIONS(OPTION)                                         \
  OPTION(std::optional<std::vector<double>>, class_weights, std::nullopt)
struct JaccardLossOptions {
  SMP_LOSS_MODE(JaccardLossOptions);
  SMP_OPTIONS(SMP_JACCARD_LOSS_OPTIONS)
};

class JaccardLossImpl : public LossImpl {
 public:
  explicit JaccardLossImpl(const JaccardLossOptions& options);
  explicit JaccardLossImpl(std::string mode) : JaccardLossImpl(JaccardLossOptions(std::move(mode))) {}
  torch::Tensor forward(const torch::Tensor& y_pred, const torch::Tensor& y_true) override;
  JaccardLossOptions options;
};
TORCH_MODULE(JaccardLoss);

// ---- Tversky: Dice with FP weighted by alpha, FN by beta, the mean raised to gamma ----
#define SMP_TVERSKY_LOSS_OPTIONS(OPTION, KWARG)                           \
  SMP_REGION_LOSS_OPTIONS(OPTION)                                         \
  OPTION(double, alpha, 0.5)                                              \
  OPTION(double, beta, 0.5)                                               \
  OPTION(double, gamma, 1.0)                                              \
  OPTION(std::optional<std::vector<double>>, class_weights, std::nullopt)
struct TverskyLossOptions {
  SMP_LOSS_MODE(TverskyLossOptions);
  SMP_OPTIONS(SMP_TVERSKY_LOSS_OPTIONS)
};

class TverskyLossImpl : public LossImpl {
 public:
  explicit TverskyLossImpl(const TverskyLossOptions& options);
  explicit TverskyLossImpl(std::string mode) : TverskyLossImpl(TverskyLossOptions(std::move(mode))) {}
  torch::Tensor forward(const torch::Tensor& y_pred, const torch::Tensor& y_true) override;
  TverskyLossOptions options;
};
TORCH_MODULE(TverskyLoss);

// ---- Focal ----
#define SMP_FOCAL_LOSS_OPTIONS(OPTION, KWARG)                                                  \
  OPTION(std::optional<double>, alpha, std::nullopt) /* weight of positives; nullopt = none */ \
  OPTION(double, gamma, 2.0)                                                                   \
  OPTION(std::optional<int64_t>, ignore_index, std::nullopt)                                   \
  OPTION(bool, from_logits, true)                                                              \
  OPTION(double, eps, 1e-7) /* clamp of probabilities when !from_logits */                     \
  OPTION(std::string, reduction, "mean") /* "mean", "sum", "batchwise_mean" or "none" */       \
  OPTION(bool, normalized, false)                                                              \
  OPTION(std::optional<double>, reduced_threshold, std::nullopt)                               \
  OPTION(std::optional<std::vector<double>>, class_weights, std::nullopt)
struct FocalLossOptions {
  SMP_LOSS_MODE(FocalLossOptions);
  SMP_OPTIONS(SMP_FOCAL_LOSS_OPTIONS)
};

class FocalLossImpl : public LossImpl {
 public:
  explicit FocalLossImpl(const FocalLossOptions& options);
  explicit FocalLossImpl(std::string mode) : FocalLossImpl(FocalLossOptions(std::move(mode))) {}
  torch::Tensor forward(const torch::Tensor& y_pred, const torch::Tensor& y_true) override;
  FocalLossOptions options;
};
TORCH_MODULE(FocalLoss);

// ---- Lovasz (hinge for binary/multilabel, softmax for multiclass) ----
#define SMP_LOVASZ_LOSS_OPTIONS(OPTION, KWARG)                                                   \
  OPTION(bool, per_image, false)                                                                 \
  OPTION(std::optional<int64_t>, ignore_index, std::nullopt)                                     \
  /* Accepted like smp's keyword, which has no effect there either: inputs are always logits. */ \
  OPTION(bool, from_logits, true)
struct LovaszLossOptions {
  SMP_LOSS_MODE(LovaszLossOptions);
  SMP_OPTIONS(SMP_LOVASZ_LOSS_OPTIONS)
};

class LovaszLossImpl : public LossImpl {
 public:
  explicit LovaszLossImpl(const LovaszLossOptions& options);
  explicit LovaszLossImpl(std::string mode) : LovaszLossImpl(LovaszLossOptions(std::move(mode))) {}
  torch::Tensor forward(const torch::Tensor& y_pred, const torch::Tensor& y_true) override;
  LovaszLossOptions options;
};
TORCH_MODULE(LovaszLoss);

// ---- SoftBCEWithLogits: BCE with logits plus ignore_index and label smoothing ----
#define SMP_SOFT_BCE_LOSS_OPTIONS(OPTION, KWARG)                                          \
  OPTION(torch::Tensor, weight, {}) /* undefined = none; registered as buffer "weight" */ \
  OPTION(std::optional<int64_t>, ignore_index, -100)                                      \
  OPTION(std::string, reduction, "mean") /* "mean", "sum" or "none" */                    \
  OPTION(std::optional<double>, smooth_factor, std::nullopt)                              \
  OPTION(torch::Tensor, pos_weight, {}) /* undefined = none; buffer "pos_weight" */
struct SoftBCEWithLogitsLossOptions {
  SMP_OPTIONS(SMP_SOFT_BCE_LOSS_OPTIONS)
};

class SoftBCEWithLogitsLossImpl : public LossImpl {
 public:
  explicit SoftBCEWithLogitsLossImpl(const SoftBCEWithLogitsLossOptions& options = {});
  torch::Tensor forward(const torch::Tensor& y_pred, const torch::Tensor& y_true) override;
  SoftBCEWithLogitsLossOptions options;

 private:
  torch::Tensor weight_, pos_weight_;  // the registered buffers (undefined when not given)
};
TORCH_MODULE(SoftBCEWithLogitsLoss);

// ---- SoftCrossEntropy: cross entropy with label smoothing ----
#define SMP_SOFT_CE_LOSS_OPTIONS(OPTION, KWARG)                        \
  OPTION(std::string, reduction, "mean") /* "mean", "sum" or "none" */ \
  /* nullopt = no smoothing (smp fails in forward without a value). */ \
  OPTION(std::optional<double>, smooth_factor, std::nullopt)           \
  OPTION(std::optional<int64_t>, ignore_index, -100)                   \
  OPTION(int64_t, dim, 1)
struct SoftCrossEntropyLossOptions {
  SMP_OPTIONS(SMP_SOFT_CE_LOSS_OPTIONS)
};

class SoftCrossEntropyLossImpl : public LossImpl {
 public:
  explicit SoftCrossEntropyLossImpl(const SoftCrossEntropyLossOptions& options = {});
  torch::Tensor forward(const torch::Tensor& y_pred, const torch::Tensor& y_true) override;
  SoftCrossEntropyLossOptions options;
};
TORCH_MODULE(SoftCrossEntropyLoss);

// ---- MCC: 1 - Matthews correlation of y_pred (used as given, no activation) and y_true ----
#define SMP_MCC_LOSS_OPTIONS(OPTION, KWARG) OPTION(double, eps, 1e-5)
struct MCCLossOptions {
  SMP_OPTIONS(SMP_MCC_LOSS_OPTIONS)
};

class MCCLossImpl : public LossImpl {
 public:
  explicit MCCLossImpl(const MCCLossOptions& options = {});
  torch::Tensor forward(const torch::Tensor& y_pred, const torch::Tensor& y_true) override;
  MCCLossOptions options;
};
TORCH_MODULE(MCCLoss);

// ---- Weighted sum of losses; the terms are registered as submodules "0", "1", ... ----
class CombinedLossImpl : public LossImpl {
 public:
  explicit CombinedLossImpl(std::vector<std::pair<Loss, double>> terms);
  torch::Tensor forward(const torch::Tensor& y_pred, const torch::Tensor& y_true) override;
  const std::vector<std::pair<Loss, double>>& terms() const { return terms_; }

 private:
  std::vector<std::pair<Loss, double>> terms_;
};
TORCH_MODULE(CombinedLoss);

// Builds a loss by smp's class name from its keyword arguments (a JSON object; tensors such as
// pos_weight as lists of numbers). "CombinedLoss" takes {"losses": [{"class": ..., "options": {...},
// "weight": w}, ...]}. Unknown classes or keywords throw std::invalid_argument listing the valid ones.
Loss create_loss(const std::string& class_name, const nlohmann::json& options = nlohmann::json::object());
// The same from key=value words (values as JSON or bare words, as smp::create_model takes them).
Loss create_loss(const std::string& class_name, const std::vector<std::string>& words);
std::vector<std::string> list_losses();
std::vector<std::string> loss_option_names(const std::string& class_name);

}  // namespace smp::losses
