#include "timm/layers/pos_embed.h"

namespace smp::timm::layers {

torch::Tensor resample_abs_pos_embed(const torch::Tensor& posemb, int64_t new_h, int64_t new_w, int64_t old_h,
                                     int64_t old_w, int64_t num_prefix_tokens) {
  if (new_h == old_h && new_w == old_w) return posemb;
  const auto dim = posemb.size(-1);
  auto prefix = posemb.slice(1, 0, num_prefix_tokens);
  auto grid = posemb.slice(1, num_prefix_tokens).to(torch::kFloat).reshape({1, old_h, old_w, dim}).permute({0, 3, 1, 2});
  namespace F = torch::nn::functional;
  grid = F::interpolate(grid, F::InterpolateFuncOptions()
                                  .size(std::vector<int64_t>{new_h, new_w})
                                  .mode(torch::kBicubic)
                                  .align_corners(false)
                                  .antialias(true));
  grid = grid.permute({0, 2, 3, 1}).reshape({1, -1, dim}).to(posemb.scalar_type());
  return num_prefix_tokens > 0 ? torch::cat({prefix, grid}, 1) : grid;
}

}  // namespace smp::timm::layers
