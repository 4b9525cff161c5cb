// The universal timm encoder's plan (design document timm_encoders.md): which of a backbone's
// features fill the encoder's slots 1..depth, the dummies, the resizing and the channel projections.
// Plain data in, plain data out, so every case can be checked without building a model.
#pragma once

#include <smp/encoders.h>
#include <smp/timm.h>

#include <cstdint>
#include <string>
#include <vector>

namespace smp::detail {

// Slot k of 1..depth: one adapted feature map.
struct PlannedSlot {
  int64_t feature = -1;          // position in SlotPlan::out_indices (the timm model's output); -1 = dummy
  int64_t channels = 0;          // the selected feature's channels (0 for a dummy)
  int64_t native_reduction = 0;  // the selected feature's reduction (0 for a dummy)
  int64_t reduction = 0;         // 2^k, capped by the output stride
  int64_t out_channels = 0;      // channels after the projection
  bool projected = false;        // a 1x1 convolution maps channels to out_channels
};

struct SlotPlan {
  int64_t depth = 0;  // the requested depth, lowered to what the backbone's features reach
  // The rows of the features table: the backbone's default features with reduction > 1, their
  // feature_info indices, and whether each fills a slot.
  std::vector<timm::FeatureInfo> candidates;
  std::vector<int64_t> candidate_indices;
  std::vector<bool> selected;
  std::vector<int64_t> out_indices;  // the selected features' indices, ascending: what timm returns
  std::vector<PlannedSlot> slots;    // slots 1..depth; dummies take the first ones
  bool projections = false;          // encoder_channels was given: a projection or identity per slot
};

// Throws std::invalid_argument unless 1 <= depth <= 5.
void check_encoder_depth(int64_t depth);

// The plan for `request` (its depth, output_stride, indices and channels) over a backbone's
// feature_info and default out_indices; `model` names the backbone in messages. Throws
// std::invalid_argument for a request the backbone cannot serve.
SlotPlan plan_slots(const std::string& model, const std::vector<timm::FeatureInfo>& feature_info,
                    const std::vector<int64_t>& default_indices, const EncoderOptions& request);

}  // namespace smp::detail
