// smp's FPN: a feature pyramid over the last four encoder features, each level brought to 1/4 of the
// input by conv-GroupNorm-ReLU blocks, merged by sum or concatenation.
#pragma once

#include <smp/models.h>

namespace smp {

#define SMP_FPN_OPTIONS(OPTION, KWARG)                                  \
  SMP_ENCODER_MODEL_OPTIONS(OPTION, KWARG, "resnet34", 5)               \
  OPTION(int64_t, decoder_pyramid_channels, 256)                        \
  OPTION(int64_t, decoder_segmentation_channels, 128)                   \
  OPTION(std::string, decoder_merge_policy, "add") /* "add" or "cat" */ \
  OPTION(double, decoder_dropout, 0.2)                                  \
  OPTION(std::string, decoder_interpolation, "nearest")                 \
  OPTION(int64_t, upsampling, 4)
struct FPNOptions {
  SMP_OPTIONS(SMP_FPN_OPTIONS)
};

class FPNImpl : public SegmentationModelImpl {
 public:
  explicit FPNImpl(const FPNOptions& options);
};
TORCH_MODULE(FPN);

}  // namespace smp
