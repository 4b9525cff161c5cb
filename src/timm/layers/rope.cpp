#include "timm/layers/rope.h"

namespace smp::timm::layers {

torch::Tensor rope_cat_embed(int64_t dim, int64_t h, int64_t w, int64_t ref_h, int64_t ref_w, double temperature) {
  const int64_t num_bands = dim / 4;
  const auto opts = torch::TensorOptions().dtype(torch::kFloat);
  auto bands = 1.0 / torch::pow(temperature, torch::arange(num_bands, opts) / static_cast<double>(num_bands));
  auto th = torch::arange(h, opts), tw = torch::arange(w, opts);
  if (ref_h > 0) th = th / static_cast<double>(h) * static_cast<double>(ref_h);
  if (ref_w > 0) tw = tw / static_cast<double>(w) * static_cast<double>(ref_w);
  auto grid = torch::stack(torch::meshgrid({th, tw}, "ij"), -1).unsqueeze(-1);  // [h, w, 2, 1]
  auto pos = grid * bands;                                                     // [h, w, 2, bands]
  auto sin = pos.sin().reshape({h * w, -1}).repeat_interleave(2, -1);
  auto cos = pos.cos().reshape({h * w, -1}).repeat_interleave(2, -1);
  return torch::cat({sin, cos}, -1);
}

torch::Tensor apply_rope_cat(const torch::Tensor& x, const torch::Tensor& embed) {
  auto halves = embed.chunk(2, -1);
  // Interleaved pairs: (x0, x1) -> (-x1, x0).
  auto rotated = torch::stack({-x.slice(-1, 1, x.size(-1), 2), x.slice(-1, 0, x.size(-1), 2)}, -1).reshape(x.sizes());
  return x * halves[1] + rotated * halves[0];
}

}  // namespace smp::timm::layers
