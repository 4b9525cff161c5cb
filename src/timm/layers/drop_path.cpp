#include "timm/layers/drop_path.h"

#include <numeric>
#include <stdexcept>
#include <string>

namespace smp::timm::layers {

namespace {

void check_rate(const char* what, double rate) {
  if (rate < 0 || rate > 1)
    throw std::invalid_argument(std::string(what) + " rate must be in [0, 1], got " + std::to_string(rate));
}

}  // namespace

torch::Tensor drop_path(const torch::Tensor& x, double rate, bool training) {
  check_rate("drop_path", rate);
  if (rate == 0 || !training) return x;
  const double keep = 1 - rate;
  std::vector<int64_t> mask_shape(static_cast<size_t>(x.dim()), 1);
  mask_shape[0] = x.size(0);
  auto mask = torch::empty(mask_shape, x.options()).bernoulli_(keep);
  // rate 1 drops every sample; there is nothing left to rescale.
  if (keep > 0) mask.div_(keep);
  return x * mask;
}

torch::Tensor dropout(const torch::Tensor& x, double rate, bool training) {
  check_rate("dropout", rate);
  if (rate == 0 || !training) return x;
  return torch::dropout(x, rate, /*train=*/true);
}

std::vector<std::vector<double>> drop_path_rates(double max_rate, const std::vector<int64_t>& stage_depths) {
  const int64_t num_blocks = std::accumulate(stage_depths.begin(), stage_depths.end(), int64_t{0});
  std::vector<std::vector<double>> rates;
  int64_t block = 0;
  for (const int64_t depth : stage_depths) {
    auto& stage = rates.emplace_back();
    for (int64_t i = 0; i < depth; ++i, ++block)
      stage.push_back(num_blocks > 1 ? max_rate * static_cast<double>(block) / static_cast<double>(num_blocks - 1)
                                     : 0.0);
  }
  return rates;
}

}  // namespace smp::timm::layers
