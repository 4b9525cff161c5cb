// timm's training-time regularisers that hold no parameters: stochastic depth (drop_path) and the
// dropout families put before their classifier. Plain functions, so state dicts are unchanged.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace smp::timm::layers {

// Stochastic depth on a residual branch: each sample (dim 0) is zeroed with probability `rate` and
// the kept ones are scaled by 1 / (1 - rate). Returns `x` itself outside training or at rate 0, so
// eval-mode traces hold no extra op.
torch::Tensor drop_path(const torch::Tensor& x, double rate, bool training);

// Element-wise dropout that, like drop_path, adds no op outside training or at rate 0.
torch::Tensor dropout(const torch::Tensor& x, double rate, bool training);
// Both throw std::invalid_argument for a rate outside [0, 1], in any mode.

// timm's linear stochastic depth schedule: one rate per block, rising from 0 at the network's first
// block to `max_rate` at its last, split into one list per stage of `stage_depths` blocks. Families
// take it over all their stages, also those features_only leaves out, as timm builds them all.
std::vector<std::vector<double>> drop_path_rates(double max_rate, const std::vector<int64_t>& stage_depths);

}  // namespace smp::timm::layers
