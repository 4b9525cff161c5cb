#include "losses/functional.h"

#include <stdexcept>
#include <tuple>
#include <vector>

namespace smp::losses::functional {

using torch::Tensor;

namespace {

// smp's helper mean: a running sum in order, divided by the count; zero (kept in the graph of
// `like`) when there is nothing to average.
Tensor running_mean(const std::vector<Tensor>& values, const Tensor& like) {
  if (values.empty()) return like.sum() * 0.0;
  Tensor acc = values[0];
  for (size_t i = 1; i < values.size(); ++i) acc = acc + values[i];
  return values.size() == 1 ? acc : acc / static_cast<double>(values.size());
}

// Gradient of the Lovasz extension with respect to the errors sorted in decreasing order.
Tensor lovasz_grad(const Tensor& gt_sorted) {
  const int64_t p = gt_sorted.size(0);
  const auto gts = gt_sorted.sum();
  const auto intersection = gts - gt_sorted.to(torch::kFloat).cumsum(0);
  const auto union_ = gts + (1 - gt_sorted).to(torch::kFloat).cumsum(0);
  auto jaccard = 1.0 - intersection / union_;
  if (p > 1) jaccard = torch::cat({jaccard.slice(0, 0, 1), jaccard.slice(0, 1) - jaccard.slice(0, 0, p - 1)});
  return jaccard;
}

Tensor lovasz_hinge_flat(const Tensor& logits, const Tensor& labels) {
  if (labels.numel() == 0) return logits.sum() * 0.0;  // only ignored pixels: zero gradient
  const auto signs = 2.0 * labels.to(torch::kFloat) - 1.0;
  const auto errors = 1.0 - logits * signs;
  Tensor errors_sorted, perm;
  std::tie(errors_sorted, perm) = torch::sort(errors, 0, /*descending=*/true);
  const auto grad = lovasz_grad(labels.index_select(0, perm));
  return torch::dot(torch::relu(errors_sorted), grad.to(errors_sorted.scalar_type()));
}

std::pair<Tensor, Tensor> flatten_binary_scores(const Tensor& scores, const Tensor& labels,
                                                std::optional<int64_t> ignore) {
  auto s = scores.reshape(-1);
  auto l = labels.reshape(-1);
  if (!ignore) return {s, l};
  const auto valid = l != *ignore;
  return {s.index({valid}), l.index({valid})};
}

Tensor lovasz_softmax_flat(const Tensor& probas, const Tensor& labels) {
  if (probas.numel() == 0) return probas.sum() * 0.0;  // only ignored pixels: zero gradient
  const int64_t num_classes = probas.size(1);
  std::vector<Tensor> losses;
  for (int64_t c = 0; c < num_classes; ++c) {
    const auto fg = (labels == c).to(probas.scalar_type());
    if (fg.sum().item<double>() == 0) continue;  // only the classes present count
    if (num_classes == 1)
      throw std::invalid_argument("LovaszLoss: multiclass mode needs y_pred with more than one channel");
    const auto errors = (fg - probas.select(1, c)).abs();
    Tensor errors_sorted, perm;
    std::tie(errors_sorted, perm) = torch::sort(errors, 0, /*descending=*/true);
    losses.push_back(torch::dot(errors_sorted, lovasz_grad(fg.index_select(0, perm)).to(errors_sorted.scalar_type())));
  }
  return running_mean(losses, probas);
}

std::pair<Tensor, Tensor> flatten_probas(const Tensor& probas, const Tensor& labels, std::optional<int64_t> ignore) {
  auto p = probas.dim() == 3 ? probas.unsqueeze(1) : probas;  // [B, H, W] sigmoid output
  const int64_t num_classes = p.size(1);
  p = torch::movedim(p, 1, -1).reshape({-1, num_classes});
  auto l = labels.reshape(-1);
  if (!ignore) return {p, l};
  const auto valid = l != *ignore;
  return {p.index({valid}), l.index({valid})};
}

}  // namespace

Tensor soft_tversky_score(const Tensor& output, const Tensor& target, double alpha, double beta, double smooth,
                          double eps, at::IntArrayRef dims) {
  if (output.sizes() != target.sizes())
    throw std::invalid_argument("soft_tversky_score: output and target shapes differ");
  const auto output_sum = torch::sum(output, dims);
  const auto target_sum = torch::sum(target, dims);
  const auto difference = torch::linalg_vector_norm(output - target, 1, dims);
  const auto intersection = (output_sum + target_sum - difference) / 2;
  const auto fp = output_sum - intersection;
  const auto fn = target_sum - intersection;
  return (intersection + smooth) / (intersection + alpha * fp + beta * fn + smooth).clamp_min(eps);
}

Tensor focal_loss_with_logits(const Tensor& output, const Tensor& target, double gamma, std::optional<double> alpha,
                              const std::string& reduction, bool normalized, std::optional<double> reduced_threshold,
                              double eps) {
  const auto t = target.to(output.options());
  const auto logpt = torch::binary_cross_entropy_with_logits(output, t, {}, {}, at::Reduction::None);
  const auto pt = torch::exp(-logpt);
  Tensor focal_term;
  if (!reduced_threshold) {
    focal_term = (1.0 - pt).pow(gamma);
  } else {
    // Reduced focal loss: plain cross entropy for the easy examples below the threshold.
    focal_term = ((1.0 - pt) / *reduced_threshold).pow(gamma).masked_fill(pt < *reduced_threshold, 1);
  }
  auto loss = focal_term * logpt;
  if (alpha) loss = loss * (*alpha * t + (1 - *alpha) * (1 - t));
  if (normalized) loss = loss / focal_term.sum().clamp_min(eps);
  if (reduction == "mean") return loss.mean();
  if (reduction == "sum") return loss.sum();
  if (reduction == "batchwise_mean") return loss.sum(0);
  return loss;
}

Tensor label_smoothed_nll_loss(const Tensor& lprobs, const Tensor& target, double epsilon,
                               std::optional<int64_t> ignore_index, const std::string& reduction, int64_t dim) {
  auto t = target.dim() == lprobs.dim() - 1 ? target.unsqueeze(dim) : target;
  Tensor nll, smooth;
  if (ignore_index) {
    // smp keeps the reduced dimension in this branch (it matters for reduction "none").
    const auto pad = t.eq(*ignore_index);
    t = t.masked_fill(pad, 0);
    nll = (-lprobs.gather(dim, t)).masked_fill(pad, 0.0);
    smooth = (-lprobs.sum(dim, /*keepdim=*/true)).masked_fill(pad, 0.0);
  } else {
    nll = (-lprobs.gather(dim, t)).squeeze(dim);
    smooth = (-lprobs.sum(dim, /*keepdim=*/true)).squeeze(dim);
  }
  if (reduction == "sum") {
    nll = nll.sum();
    smooth = smooth.sum();
  } else if (reduction == "mean") {
    nll = nll.mean();
    smooth = smooth.mean();
  }
  const double eps_i = epsilon / static_cast<double>(lprobs.size(dim));
  return (1.0 - epsilon) * nll + eps_i * smooth;
}

Tensor lovasz_hinge(const Tensor& logits, const Tensor& labels, bool per_image, std::optional<int64_t> ignore) {
  if (!per_image) {
    const auto [s, l] = flatten_binary_scores(logits, labels, ignore);
    return lovasz_hinge_flat(s, l);
  }
  std::vector<Tensor> losses;
  for (int64_t i = 0; i < logits.size(0); ++i) {
    const auto [s, l] = flatten_binary_scores(logits[i].unsqueeze(0), labels[i].unsqueeze(0), ignore);
    losses.push_back(lovasz_hinge_flat(s, l));
  }
  return running_mean(losses, logits);
}

Tensor lovasz_softmax(const Tensor& probas, const Tensor& labels, bool per_image, std::optional<int64_t> ignore) {
  if (!per_image) {
    const auto [p, l] = flatten_probas(probas, labels, ignore);
    return lovasz_softmax_flat(p, l);
  }
  std::vector<Tensor> losses;
  for (int64_t i = 0; i < probas.size(0); ++i) {
    const auto [p, l] = flatten_probas(probas[i].unsqueeze(0), labels[i].unsqueeze(0), ignore);
    losses.push_back(lovasz_softmax_flat(p, l));
  }
  return running_mean(losses, probas);
}

}  // namespace smp::losses::functional
