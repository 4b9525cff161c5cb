// smp's Linknet: encoder features added back into a chain of 1x1 / transposed-conv / 1x1 blocks.
#pragma once

#include <smp/models.h>

namespace smp {

struct LinknetOptions {
  SMP_ENCODER_MODEL_OPTIONS("resnet34");
  TORCH_ARG(NormSpec, decoder_use_norm) = {};
};

class LinknetImpl : public SegmentationModelImpl {
 public:
  explicit LinknetImpl(const LinknetOptions& options);
};
TORCH_MODULE(Linknet);

}  // namespace smp
