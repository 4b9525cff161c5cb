// timm's resample_abs_pos_embed: a learned position embedding grid resized to another grid.
#pragma once

#include <torch/torch.h>

namespace smp::timm::layers {

// posemb [1, prefix + old_h * old_w, C]; the grid part is resized with bicubic interpolation
// (antialiased when shrinking, as timm does) and the prefix tokens are kept.
torch::Tensor resample_abs_pos_embed(const torch::Tensor& posemb, int64_t new_h, int64_t new_w, int64_t old_h,
                                     int64_t old_w, int64_t num_prefix_tokens);

}  // namespace smp::timm::layers
