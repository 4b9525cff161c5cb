// smp's MAnet: a position-wise attention block on the deepest feature, then multi-scale fusion
// attention blocks (squeeze & excitation on both the upsampled and the skip path) up to the input.
#pragma once

#include <smp/models.h>

namespace smp {

struct MAnetOptions {
  SMP_ENCODER_MODEL_OPTIONS("resnet34");
  TORCH_ARG(NormSpec, decoder_use_norm) = {};
  TORCH_ARG(std::vector<int64_t>, decoder_channels) = std::vector<int64_t>{256, 128, 64, 32, 16};
  TORCH_ARG(int64_t, decoder_pab_channels) = 64;
  TORCH_ARG(std::string, decoder_interpolation) = "nearest";
};

class MAnetImpl : public SegmentationModelImpl {
 public:
  explicit MAnetImpl(const MAnetOptions& options);
};
TORCH_MODULE(MAnet);

}  // namespace smp
