// Small arithmetic helpers shared by timm layers and model definitions (timm's layers/helpers.py).
#pragma once

#include <smp/timm.h>

#include <cstdint>
#include <string>
#include <vector>

namespace smp::timm::layers {

// timm's make_divisible: `v` rounded to the nearest multiple of `divisor`, at least `min_value`
// (`divisor` when 0), and bumped up one step when rounding lost more than (1 - round_limit) of `v`.
int64_t make_divisible(double v, int64_t divisor = 8, double min_value = 0.0, double round_limit = 0.9);

// Throws std::invalid_argument unless `indices` ascend strictly within 0..available-1 (the features
// this instance of `model` built).
void check_feature_indices(const std::vector<int64_t>& indices, int64_t available, const std::string& model);

// The feature an out_indices entry selects among the `count` features of `model` (negative entries
// count from the end, as in Python). Throws std::invalid_argument naming the entry and the valid
// range when it selects none, as timm does.
int64_t feature_index(int64_t out_index, int64_t count, const std::string& model);

// The last of `count` features a model must build: the largest requested out_indices entry when
// built features_only with out_indices, else count - 1. Throws like feature_index for a bad entry.
int64_t last_feature_index(const ModelArgs& args, int64_t count, const std::string& model);

}  // namespace smp::timm::layers
