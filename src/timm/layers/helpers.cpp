#include "timm/layers/helpers.h"

#include <stdexcept>

#include <algorithm>
#include <cmath>

namespace smp::timm::layers {

int64_t make_divisible(double v, int64_t divisor, double min_value, double round_limit) {
  const double floor_value = min_value > 0 ? min_value : static_cast<double>(divisor);
  const auto rounded = static_cast<int64_t>(v + static_cast<double>(divisor) / 2) / divisor * divisor;
  // A fractional min_value (torchvision's 0.9) never wins against a positive multiple.
  auto out = static_cast<int64_t>(std::max(floor_value, static_cast<double>(rounded)));
  if (static_cast<double>(out) < round_limit * v) out += divisor;
  return out;
}

void check_feature_indices(const std::vector<int64_t>& indices, int64_t available, const std::string& model) {
  for (size_t k = 0; k < indices.size(); ++k) {
    if (indices[k] < 0 || indices[k] >= available)
      throw std::invalid_argument("feature index " + std::to_string(indices[k]) + " is out of range: this " + model +
                                  " has features 0.." + std::to_string(available - 1));
    if (k > 0 && indices[k] <= indices[k - 1]) throw std::invalid_argument("feature indices must be increasing");
  }
}

int64_t feature_index(int64_t out_index, int64_t count, const std::string& model) {
  if (out_index < -count || out_index >= count)
    throw std::invalid_argument("out_indices entry " + std::to_string(out_index) + " is out of range: " + model +
                                " has " + std::to_string(count) + " features (indices 0.." +
                                std::to_string(count - 1) + ", or -" + std::to_string(count) +
                                "..-1 from the end)");
  return out_index < 0 ? out_index + count : out_index;
}

int64_t last_feature_index(const ModelArgs& args, int64_t count, const std::string& model) {
  if (!args.features_only() || args.out_indices().empty()) return count - 1;
  int64_t last = 0;
  for (auto i : args.out_indices()) last = std::max(last, feature_index(i, count, model));
  return last;
}

}  // namespace smp::timm::layers
