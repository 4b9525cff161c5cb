// Shifted-window helpers of the Swin-style families: an NHWC map cut into non-overlapping windows and
// put back together, and the attention mask that keeps a cyclically shifted window from mixing
// tokens the roll brought together from opposite borders.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>

namespace smp::timm::layers {

// [B, H, W, C] (H, W multiples of the window) -> [B * nW, wh * ww, C].
torch::Tensor window_partition(const torch::Tensor& x, int64_t wh, int64_t ww);
// Inverse of window_partition: windows [B * nW, wh * ww, C] (or [B * nW, wh, ww, C]) -> [B, h, w, C].
torch::Tensor window_reverse(const torch::Tensor& windows, int64_t wh, int64_t ww, int64_t h, int64_t w);
// [nW, wh * ww, wh * ww] mask (0 or -100) for an h x w map (multiples of the window) rolled by
// (-sh, -sw); the regions follow timm's three slices per axis, also when one shift is 0.
torch::Tensor shifted_window_mask(int64_t h, int64_t w, int64_t wh, int64_t ww, int64_t sh, int64_t sw,
                                  const torch::TensorOptions& options);

// Attention over (optionally shifted) windows of an NHWC map: roll by (-sh, -sw), pad to window
// multiples, partition, attend(windows, mask) with the shift mask of the padded map (undefined when
// there is no shift), merge, crop and roll back.
using WindowAttendFn = std::function<torch::Tensor(const torch::Tensor& windows, const torch::Tensor& mask)>;
torch::Tensor shifted_window_attention(const torch::Tensor& x, int64_t wh, int64_t ww, int64_t sh, int64_t sw,
                                       const WindowAttendFn& attend);

}  // namespace smp::timm::layers
