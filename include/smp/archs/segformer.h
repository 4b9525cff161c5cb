// smp's Segformer: per-level linear projections, resized to 1/4 of the input, fused by a 1x1 conv.
#pragma once

#include <smp/models.h>

namespace smp {

#define SMP_SEGFORMER_OPTIONS(OPTION, KWARG)              \
  SMP_ENCODER_MODEL_OPTIONS(OPTION, KWARG, "resnet34", 5) \
  OPTION(int64_t, decoder_segmentation_channels, 256)     \
  OPTION(int64_t, upsampling, 4)
struct SegformerOptions {
  SMP_OPTIONS(SMP_SEGFORMER_OPTIONS)
};

class SegformerImpl : public SegmentationModelImpl {
 public:
  explicit SegformerImpl(const SegformerOptions& options);
};
TORCH_MODULE(Segformer);

}  // namespace smp
