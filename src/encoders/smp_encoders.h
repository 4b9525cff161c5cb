// smp's own encoder names (resnet*, resnext*, mit_b*), built by create_encoder.
#pragma once

#include <smp/encoders.h>

#include <string>
#include <vector>

namespace smp {

// nullptr when `options.name()` is not one of smp's own encoders.
Encoder create_smp_encoder(const EncoderOptions& options);

// encoder_weights naming a local file rather than pretrained weights: it holds a '/' or ends in
// ".safetensors".
bool is_weights_path(const std::string& weights);

}  // namespace smp
