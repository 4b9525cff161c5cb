#include "encoders/slot_plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace smp::detail {

namespace {

std::string bracketed(const std::vector<int64_t>& values) { return fmt::format("[{}]", fmt::join(values, ", ")); }

// Positions into the candidates of the `count` features that fill slots, ascending.
std::vector<int64_t> select_candidates(const EncoderIndices& indices, int64_t count, int64_t depth,
                                       const std::vector<int64_t>& candidate_indices) {
  const auto n = static_cast<int64_t>(candidate_indices.size());
  std::vector<int64_t> chosen;
  if (indices.mode == "first") {
    for (int64_t i = 0; i < count; ++i) chosen.push_back(i);
  } else if (indices.mode == "last") {
    for (int64_t i = n - count; i < n; ++i) chosen.push_back(i);
  } else if (indices.mode == "list") {
    if (static_cast<int64_t>(indices.list.size()) != count)
      throw std::invalid_argument(fmt::format(
          "encoder_indices has {} entries but the encoder uses {} features (encoder_depth={}, the model has {}); "
          "give exactly {} of the indices {}",
          indices.list.size(), count, depth, n, count, bracketed(candidate_indices)));
    for (auto want : indices.list) {
      auto it = std::find(candidate_indices.begin(), candidate_indices.end(), want);
      if (it == candidate_indices.end())
        throw std::invalid_argument(fmt::format("encoder_indices entry {} is out of range: valid indices are {}",
                                                want, bracketed(candidate_indices)));
      const int64_t position = it - candidate_indices.begin();
      if (std::find(chosen.begin(), chosen.end(), position) != chosen.end())
        throw std::invalid_argument(fmt::format("encoder_indices entry {} is repeated", want));
      chosen.push_back(position);
    }
    std::sort(chosen.begin(), chosen.end());  // features always run from high to low resolution
  } else {
    throw std::invalid_argument("encoder_indices must be \"first\", \"last\" or a list of indices, got \"" +
                                indices.mode + "\"");
  }
  return chosen;
}

}  // namespace

void check_encoder_depth(int64_t depth) {
  if (depth < 1 || depth > 5)
    throw std::invalid_argument("encoder_depth must be in the range 1..5, got " + std::to_string(depth));
}

SlotPlan plan_slots(const std::string& model, const std::vector<timm::FeatureInfo>& feature_info,
                    const std::vector<int64_t>& default_indices, const EncoderOptions& request) {
  check_encoder_depth(request.depth());
  SlotPlan plan;
  // The backbone's default features-only set; reduction-1 maps (VGG) are not candidates.
  for (auto index : default_indices) {
    const auto& f = feature_info.at(static_cast<size_t>(index));
    if (f.reduction > 1) {
      plan.candidates.push_back(f);
      plan.candidate_indices.push_back(index);
    }
  }
  const auto n = static_cast<int64_t>(plan.candidates.size());
  if (n == 0) throw std::invalid_argument("timm model '" + model + "' exposes no feature with reduction > 1");

  // The depth the features reach: their number, or log2 of their largest reduction if that is more.
  int64_t max_reduction = 0;
  for (const auto& f : plan.candidates) max_reduction = std::max(max_reduction, f.reduction);
  const auto by_reduction = static_cast<int64_t>(std::lround(std::log2(static_cast<double>(max_reduction))));
  plan.depth = std::min(request.depth(), std::max(n, by_reduction));

  const int64_t count = std::min(plan.depth, n);
  const auto chosen = select_candidates(request.indices(), count, plan.depth, plan.candidate_indices);
  plan.selected.assign(static_cast<size_t>(n), false);
  for (auto position : chosen) {
    plan.selected[static_cast<size_t>(position)] = true;
    plan.out_indices.push_back(plan.candidate_indices[static_cast<size_t>(position)]);
  }

  // Too few features: dummies (0 channels) take the highest-resolution slots.
  const int64_t dummies = plan.depth - count;
  for (int64_t k = 1; k <= plan.depth; ++k) {
    PlannedSlot s;
    s.reduction = std::min<int64_t>(int64_t{1} << k, request.output_stride());
    if (k > dummies) {
      s.feature = k - dummies - 1;
      const auto& f = plan.candidates[static_cast<size_t>(chosen[static_cast<size_t>(s.feature)])];
      s.channels = s.out_channels = f.num_chs;
      s.native_reduction = f.reduction;
    }
    plan.slots.push_back(s);
  }

  const auto& channels = request.channels();
  if (channels.empty()) return plan;
  // One entry per slot; a list made for the requested depth is accepted when the depth was lowered.
  if (static_cast<int64_t>(channels.size()) != plan.depth && static_cast<int64_t>(channels.size()) != request.depth())
    throw std::invalid_argument(
        fmt::format("encoder_channels has {} entries; it needs one per feature ({})", channels.size(), plan.depth));
  plan.projections = true;
  for (size_t k = 0; k < plan.slots.size(); ++k) {
    auto& s = plan.slots[k];
    const auto want = channels[k];
    s.projected = s.feature >= 0 && want != s.channels;
    if (!s.projected) continue;
    if (want < 1) throw std::invalid_argument("encoder_channels entries must be >= 1, got " + std::to_string(want));
    s.out_channels = want;
  }
  return plan;
}

}  // namespace smp::detail
