// smp's Linknet: encoder features added back into a chain of 1x1 / transposed-conv / 1x1 blocks.
#pragma once

#include <smp/models.h>

namespace smp {

#define SMP_LINKNET_OPTIONS(OPTION, KWARG)                \
  SMP_ENCODER_MODEL_OPTIONS(OPTION, KWARG, "resnet34", 5) \
  OPTION(NormSpec, decoder_use_norm, {})
struct LinknetOptions {
  SMP_OPTIONS(SMP_LINKNET_OPTIONS)
};

class LinknetImpl : public SegmentationModelImpl {
 public:
  explicit LinknetImpl(const LinknetOptions& options);
};
TORCH_MODULE(Linknet);

}  // namespace smp
