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

// The names of smp's pretrained weights for one of its encoders ("imagenet", "ssl", ...); empty for
// a name that is not one of them.
std::vector<std::string> smp_encoder_weights(const std::string& encoder);

}  // namespace smp
