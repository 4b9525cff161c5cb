// smp's UnetPlusPlus: Unet with nested, densely connected decoder blocks between each encoder level.
#pragma once

#include <smp/models.h>

namespace smp {

struct UnetPlusPlusOptions {
  SMP_ENCODER_MODEL_OPTIONS("resnet34");
  TORCH_ARG(NormSpec, decoder_use_norm) = {};
  TORCH_ARG(std::vector<int64_t>, decoder_channels) = std::vector<int64_t>{256, 128, 64, 32, 16};
  TORCH_ARG(std::string, decoder_attention_type) = "";  // "" or "scse"
  TORCH_ARG(std::string, decoder_interpolation) = "nearest";
};

class UnetPlusPlusImpl : public SegmentationModelImpl {
 public:
  explicit UnetPlusPlusImpl(const UnetPlusPlusOptions& options);
};
TORCH_MODULE(UnetPlusPlus);

}  // namespace smp
