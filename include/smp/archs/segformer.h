// smp's Segformer: per-level linear projections, resized to 1/4 of the input, fused by a 1x1 conv.
#pragma once

#include <smp/models.h>

namespace smp {

struct SegformerOptions {
  SMP_ENCODER_MODEL_OPTIONS("resnet34");
  TORCH_ARG(int64_t, decoder_segmentation_channels) = 256;
  TORCH_ARG(int64_t, upsampling) = 4;
};

class SegformerImpl : public SegmentationModelImpl {
 public:
  explicit SegformerImpl(const SegformerOptions& options);
};
TORCH_MODULE(Segformer);

}  // namespace smp
