// Memory-bound ops written for channels-last tensors, where LibTorch's kernels fall back to slow
// paths or would need extra passes: channel concatenation with the resizing of its inputs folded in
// (nearest and bilinear, PyTorch's index rules), and a per-channel affine map (an unfolded
// BatchNorm) with an optional ReLU.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <vector>

namespace smp::inference {

// One input of a channel concatenation: `source` [N, C, h, w], resized to the output's [H, W] as
// F.interpolate would with the given mode and arguments (no resizing when the sizes agree and the
// mode is nearest).
struct CatPart {
  enum class Mode { kNearest, kBilinear };
  at::Tensor source;
  Mode mode = Mode::kNearest;
  bool align_corners = false;
  std::optional<double> scale_h, scale_w;  // the scale factors the model passed, if any
};

// [N, sum C, H, W] channels-last in the parts' dtype (they must share it).
at::Tensor cat_channels_last(const std::vector<CatPart>& parts, int64_t height, int64_t width);

// The elementwise sum of same-shaped tensors (what stack(xs).sum(0) computes), in one pass, in the
// memory format of the first.
at::Tensor sum_tensors(const std::vector<at::Tensor>& xs);

// x * scale[c] + shift[c] (then max(0, .) with `relu`) for x [N, C, H, W]; scale, shift float32 [C].
at::Tensor affine_channels_last(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& shift, bool relu);

// A depthwise convolution (channel multiplier 1) of x [N, C, H, W] into [N, C, OH, OW], channels-last,
// float accumulation: for the dilated ones oneDNN 2.6 has no depthwise kernel for (DeepLabV3's
// separable atrous convolutions). weight [kh, kw, C] and bias [C] (or undefined) float32; stride,
// padding and dilation two each.
at::Tensor depthwise_channels_last(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                                   at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
                                   int64_t out_height, int64_t out_width);

}  // namespace smp::inference
