// smp's own encoder names (src/encoders/smp/groups.def lists their groups), built by create_encoder.
#pragma once

#include <smp/encoders.h>
#include <smp/preprocessing.h>

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

// The preprocessing those weights expect; throws std::invalid_argument naming the available weights.
PreprocessingParams smp_encoder_preprocessing(const std::string& encoder, const std::string& weights);

}  // namespace smp
