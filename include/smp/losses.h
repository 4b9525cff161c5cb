// Segmentation losses of smp.losses, with smp's keyword names and defaults.
//
// Every loss is a torch::nn::Module whose forward(y_pred, y_true) returns the loss tensor.
// Shapes follow smp: y_pred [N, C, ...] logits (C = 1 for binary); y_true [N, 1, ...] / [N, ...]
// (binary), [N, ...] int64 labels (multiclass) or [N, C, ...] (multilabel).
#pragma once

#include <torch/torch.h>

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

// The options Dice, Jaccard and Tversky share, with smp's names and defaults.
#define SMP_REGION_LOSS_OPTIONS(OPTIONS)                                                 \
  /* implicit */ OPTIONS(std::string mode) : mode_(std::move(mode)) {}                 \
  TORCH_ARG(std::string, mode);                                                        \
  /* channels that contribute to the loss (not with binary mode); nullopt = all */     \
  TORCH_ARG(std::optional<std::vector<int64_t>>, classes) = std::nullopt;              \
  /* -log(score) instead of 1 - score */                                               \
  TORCH_ARG(bool, log_loss) = false;                                                   \
  TORCH_ARG(bool, from_logits) = true;                                                 \
  TORCH_ARG(double, smooth) = 0.0;                                                     \
  TORCH_ARG(std::optional<int64_t>, ignore_index) = std::nullopt;                      \
  TORCH_ARG(double, eps) = 1e-7

// ---- Dice ----
struct DiceLossOptions {
  SMP_REGION_LOSS_OPTIONS(DiceLossOptions);
  // One weight per class (not with binary mode); the per-class losses' weighted mean.
  TORCH_ARG(std::optional<std::vector<double>>, class_weights) = std::nullopt;
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
struct JaccardLossOptions {
  SMP_REGION_LOSS_OPTIONS(JaccardLossOptions);
  TORCH_ARG(std::optional<std::vector<double>>, class_weights) = std::nullopt;
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
struct TverskyLossOptions {
  SMP_REGION_LOSS_OPTIONS(TverskyLossOptions);
  TORCH_ARG(double, alpha) = 0.5;
  TORCH_ARG(double, beta) = 0.5;
  TORCH_ARG(double, gamma) = 1.0;
  TORCH_ARG(std::optional<std::vector<double>>, class_weights) = std::nullopt;
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
struct FocalLossOptions {
  /* implicit */ FocalLossOptions(std::string mode) : mode_(std::move(mode)) {}
  TORCH_ARG(std::string, mode);
  TORCH_ARG(std::optional<double>, alpha) = std::nullopt;  // weight of positives; nullopt = none
  TORCH_ARG(double, gamma) = 2.0;
  TORCH_ARG(std::optional<int64_t>, ignore_index) = std::nullopt;
  TORCH_ARG(bool, from_logits) = true;
  TORCH_ARG(double, eps) = 1e-7;               // clamp of probabilities when !from_logits
  TORCH_ARG(std::string, reduction) = "mean";  // "mean", "sum", "batchwise_mean" or "none"
  TORCH_ARG(bool, normalized) = false;
  TORCH_ARG(std::optional<double>, reduced_threshold) = std::nullopt;
  TORCH_ARG(std::optional<std::vector<double>>, class_weights) = std::nullopt;
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
struct LovaszLossOptions {
  /* implicit */ LovaszLossOptions(std::string mode) : mode_(std::move(mode)) {}
  TORCH_ARG(std::string, mode);
  TORCH_ARG(bool, per_image) = false;
  TORCH_ARG(std::optional<int64_t>, ignore_index) = std::nullopt;
  // Accepted like smp's keyword, which has no effect there either: inputs are always logits.
  TORCH_ARG(bool, from_logits) = true;
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
struct SoftBCEWithLogitsLossOptions {
  TORCH_ARG(torch::Tensor, weight) = {};  // undefined = none; registered as buffer "weight"
  TORCH_ARG(std::optional<int64_t>, ignore_index) = -100;
  TORCH_ARG(std::string, reduction) = "mean";  // "mean", "sum" or "none"
  TORCH_ARG(std::optional<double>, smooth_factor) = std::nullopt;
  TORCH_ARG(torch::Tensor, pos_weight) = {};  // undefined = none; buffer "pos_weight"
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
struct SoftCrossEntropyLossOptions {
  TORCH_ARG(std::string, reduction) = "mean";  // "mean", "sum" or "none"
  // nullopt = no smoothing (smp fails in forward without a value).
  TORCH_ARG(std::optional<double>, smooth_factor) = std::nullopt;
  TORCH_ARG(std::optional<int64_t>, ignore_index) = -100;
  TORCH_ARG(int64_t, dim) = 1;
};

class SoftCrossEntropyLossImpl : public LossImpl {
 public:
  explicit SoftCrossEntropyLossImpl(const SoftCrossEntropyLossOptions& options = {});
  torch::Tensor forward(const torch::Tensor& y_pred, const torch::Tensor& y_true) override;
  SoftCrossEntropyLossOptions options;
};
TORCH_MODULE(SoftCrossEntropyLoss);

// ---- MCC: 1 - Matthews correlation of y_pred (used as given, no activation) and y_true ----
struct MCCLossOptions {
  TORCH_ARG(double, eps) = 1e-5;
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
