// timm's 2-D rotary position embedding in its "cat" form (RotaryEmbeddingCat): sin and cos tables
// for an h x w token grid, applied to interleaved channel pairs of queries and keys.
#pragma once

#include <torch/torch.h>

namespace smp::timm::layers {

// [h * w, 2 * dim] = cat(sin, cos) for head dimension `dim`; grid coordinates are scaled to
// `ref_h` x `ref_w` (timm's ref_feat_shape) when those are > 0.
torch::Tensor rope_cat_embed(int64_t dim, int64_t h, int64_t w, int64_t ref_h, int64_t ref_w,
                             double temperature = 10000.0);

// x [..., N, dim] rotated by the table from rope_cat_embed.
torch::Tensor apply_rope_cat(const torch::Tensor& x, const torch::Tensor& embed);

}  // namespace smp::timm::layers
