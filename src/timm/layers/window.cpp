#include "timm/layers/window.h"

#include <utility>
#include <vector>

namespace smp::timm::layers {

namespace F = torch::nn::functional;

torch::Tensor window_partition(const torch::Tensor& x, int64_t wh, int64_t ww) {
  const auto b = x.size(0), h = x.size(1), w = x.size(2), c = x.size(3);
  return x.view({b, h / wh, wh, w / ww, ww, c}).permute({0, 1, 3, 2, 4, 5}).reshape({-1, wh * ww, c});
}

torch::Tensor window_reverse(const torch::Tensor& windows, int64_t wh, int64_t ww, int64_t h, int64_t w) {
  const auto c = windows.size(-1);
  return windows.view({-1, h / wh, w / ww, wh, ww, c}).permute({0, 1, 3, 2, 4, 5}).reshape({-1, h, w, c});
}

namespace {
// The three [begin, end) spans per axis that timm labels; a zero shift turns the last one into the
// whole axis (Python's x[-0:]), which is what makes a one-axis shift mask what timm's is.
std::vector<std::pair<int64_t, int64_t>> mask_spans(int64_t n, int64_t window, int64_t shift) {
  const int64_t s = shift ? n - shift : 0;
  return {{0, n - window}, {n - window, s}, {s, n}};
}
}  // namespace

torch::Tensor shifted_window_mask(int64_t h, int64_t w, int64_t wh, int64_t ww, int64_t sh, int64_t sw,
                                  const torch::TensorOptions& options) {
  auto img = torch::zeros({1, h, w, 1}, options);
  double region = 0;
  for (const auto& [h0, h1] : mask_spans(h, wh, sh))
    for (const auto& [w0, w1] : mask_spans(w, ww, sw)) {
      if (h1 > h0 && w1 > w0) img.slice(1, h0, h1).slice(2, w0, w1).fill_(region);
      region += 1;
    }
  auto windows = window_partition(img, wh, ww).squeeze(-1);
  auto diff = windows.unsqueeze(1) - windows.unsqueeze(2);
  return torch::zeros_like(diff).masked_fill(diff != 0, -100.0);
}

torch::Tensor shifted_window_attention(const torch::Tensor& x, int64_t wh, int64_t ww, int64_t sh, int64_t sw,
                                       const WindowAttendFn& attend) {
  const auto h = x.size(1), w = x.size(2);
  const bool shifted = sh || sw;
  auto y = shifted ? torch::roll(x, {-sh, -sw}, {1, 2}) : x;
  const auto pad_h = (wh - h % wh) % wh, pad_w = (ww - w % ww) % ww;
  if (pad_h || pad_w) y = F::pad(y, F::PadFuncOptions({0, 0, 0, pad_w, 0, pad_h}));
  const auto hp = y.size(1), wp = y.size(2);
  const auto mask = shifted ? shifted_window_mask(hp, wp, wh, ww, sh, sw, x.options()) : torch::Tensor();
  auto windows = attend(window_partition(y, wh, ww), mask);
  y = window_reverse(windows, wh, ww, hp, wp);
  if (pad_h || pad_w) y = y.slice(1, 0, h).slice(2, 0, w).contiguous();
  return shifted ? torch::roll(y, {sh, sw}, {1, 2}) : y;
}

}  // namespace smp::timm::layers
