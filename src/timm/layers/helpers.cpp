#include "timm/layers/helpers.h"

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

}  // namespace smp::timm::layers
