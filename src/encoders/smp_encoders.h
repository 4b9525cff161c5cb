// smp's own encoder names (resnet*, resnext*, mit_b*), built by create_encoder.
#pragma once

#include <smp/encoders.h>

#include <string>
#include <vector>

namespace smp {

// nullptr when `options.name()` is not one of smp's own encoders.
Encoder create_smp_encoder(const EncoderOptions& options);

}  // namespace smp
