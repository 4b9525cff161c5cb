// smp's FPN: a feature pyramid over the last four encoder features, each level brought to 1/4 of the
// input by conv-GroupNorm-ReLU blocks, merged by sum or concatenation.
#pragma once

#include <smp/models.h>

namespace smp {

struct FPNOptions {
  SMP_ENCODER_MODEL_OPTIONS("resnet34");
  TORCH_ARG(int64_t, decoder_pyramid_channels) = 256;
  TORCH_ARG(int64_t, decoder_segmentation_channels) = 128;
  TORCH_ARG(std::string, decoder_merge_policy) = "add";  // "add" or "cat"
  TORCH_ARG(double, decoder_dropout) = 0.2;
  TORCH_ARG(std::string, decoder_interpolation) = "nearest";
  TORCH_ARG(int64_t, upsampling) = 4;
};

class FPNImpl : public SegmentationModelImpl {
 public:
  explicit FPNImpl(const FPNOptions& options);
};
TORCH_MODULE(FPN);

}  // namespace smp
