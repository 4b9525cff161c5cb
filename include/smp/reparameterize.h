// Inference re-parameterisation (timm's reparameterize_model): multi-branch training-time blocks
// (MobileOne, timm's and smp's mobileone_s* encoders alike; FastViT's MobileOne blocks, large-kernel
// convolutions, RepMixers and conditional position encodings) folded into single convolutions. Outputs stay equal; parameter names change to
// timm's re-parameterised ones ("reparam_conv.*"), so re-parameterised timm checkpoints load after it.
#pragma once

#include <torch/torch.h>

namespace smp::timm {

// Re-parameterises every re-parameterisable block inside `model` (a backbone, a features model or a
// whole segmentation model); returns how many blocks were folded.
int64_t reparameterize(torch::nn::Module& model);

}  // namespace smp::timm
