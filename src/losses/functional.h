// Loss building blocks (smp.losses._functional and lovasz), shared by the loss modules.
#pragma once

#include <torch/torch.h>

#include <optional>
#include <string>

namespace smp::losses::functional {

// Soft Tversky index summed over `dims`: (TP + smooth) / max(TP + alpha FP + beta FN + smooth, eps),
// with TP recovered from the sums and the L1 distance of output and target, as smp computes it.
// alpha = beta = 0.5 is the Dice score, alpha = beta = 1 the Jaccard index.
torch::Tensor soft_tversky_score(const torch::Tensor& output, const torch::Tensor& target, double alpha, double beta,
                                 double smooth, double eps, at::IntArrayRef dims);

// Binary focal loss on logits. reduction: "mean", "sum", "batchwise_mean" (sum over dim 0) or "none".
torch::Tensor focal_loss_with_logits(const torch::Tensor& output, const torch::Tensor& target, double gamma,
                                     std::optional<double> alpha, const std::string& reduction, bool normalized,
                                     std::optional<double> reduced_threshold, double eps = 1e-6);

// Cross entropy of log-probabilities with label smoothing `epsilon` (fairseq's formulation).
torch::Tensor label_smoothed_nll_loss(const torch::Tensor& lprobs, const torch::Tensor& target, double epsilon,
                                      std::optional<int64_t> ignore_index, const std::string& reduction, int64_t dim);

// Lovasz hinge of logits vs binary labels (every element of the batch pooled, or per image and averaged).
torch::Tensor lovasz_hinge(const torch::Tensor& logits, const torch::Tensor& labels, bool per_image,
                           std::optional<int64_t> ignore);
// Lovasz-Softmax of probabilities [B, C, ...] vs labels [B, ...], averaged over the present classes.
torch::Tensor lovasz_softmax(const torch::Tensor& probas, const torch::Tensor& labels, bool per_image,
                             std::optional<int64_t> ignore);

}  // namespace smp::losses::functional
