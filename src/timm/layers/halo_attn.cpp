#include "timm/layers/halo_attn.h"

#include <cmath>
#include <stdexcept>

#include "timm/layers/helpers.h"

namespace smp::timm::layers {

namespace nn = torch::nn;

torch::Tensor rel_logits_1d(const torch::Tensor& q, const torch::Tensor& rel_k, int64_t expand,
                            const std::vector<int64_t>& permute) {
  const int64_t b = q.size(0), h = q.size(1), w = q.size(2), rel = rel_k.size(0), win = (rel + 1) / 2;
  // Logits against every relative offset, then the skew trick (pad, flatten, re-view) that turns
  // offsets into absolute key positions.
  auto x = torch::matmul(q, rel_k.t()).reshape({-1, w, rel});
  x = torch::constant_pad_nd(x, {0, 1}).flatten(1);
  x = torch::constant_pad_nd(x, {0, rel - w}).reshape({-1, w + 1, rel});
  x = x.slice(1, 0, w).slice(2, win - 1);
  return x.reshape({b, h, 1, w, win}).expand({b, h, expand, w, win}).permute(permute);
}

HaloAttnImpl::HaloAttnImpl(const HaloAttnOptions& o)
    : heads_(o.num_heads()), block_size_(o.block_size()), halo_size_(o.halo_size()) {
  const int64_t dim = o.dim();
  if (dim % heads_ != 0) throw std::invalid_argument("HaloAttn: channels not divisible by heads");
  if (o.stride() != 1 && o.stride() != 2) throw std::invalid_argument("HaloAttn: stride must be 1 or 2");
  dim_head_qk_ = o.dim_head() > 0 ? o.dim_head() : make_divisible(static_cast<double>(dim) * o.qk_ratio(), 8) / heads_;
  dim_head_v_ = dim / heads_;
  scale_ = 1.0 / std::sqrt(static_cast<double>(dim_head_qk_));
  win_size_ = block_size_ + 2 * halo_size_;
  block_stride_ = 1;
  block_size_ds_ = block_size_;
  if (o.stride() > 1) {
    // Strided query tiles when the tile divides by the stride, else a 2x2 average pool afterwards.
    avg_pool_ = block_size_ % o.stride() != 0;
    block_stride_ = avg_pool_ ? 1 : o.stride();
    block_size_ds_ = block_size_ / block_stride_;
  }
  q_ = register_module("q", nn::Conv2d(nn::Conv2dOptions(dim, heads_ * dim_head_qk_, 1).stride(block_stride_).bias(false)));
  kv_ = register_module("kv", nn::Conv2d(nn::Conv2dOptions(dim, heads_ * (dim_head_qk_ + dim_head_v_), 1).bias(false)));
  auto pos = register_module("pos_embed", std::make_shared<nn::Module>());
  height_rel_ = pos->register_parameter("height_rel", torch::zeros({2 * win_size_ - 1, dim_head_qk_}));
  width_rel_ = pos->register_parameter("width_rel", torch::zeros({2 * win_size_ - 1, dim_head_qk_}));
}

torch::Tensor HaloAttnImpl::forward(const torch::Tensor& x) {
  const int64_t b = x.size(0), h = x.size(2), w = x.size(3), bs = block_size_, bsd = block_size_ds_;
  if (h % bs != 0 || w % bs != 0)
    throw std::invalid_argument("HaloAttn: feature map " + std::to_string(h) + "x" + std::to_string(w) +
                                " is not a multiple of the block size " + std::to_string(bs));
  const int64_t nh = h / bs, nw = w / bs, nb = nh * nw;
  auto q = q_(x).reshape({-1, dim_head_qk_, nh, bsd, nw, bsd}).permute({0, 1, 3, 5, 2, 4});
  q = q.reshape({b * heads_, dim_head_qk_, -1, nb}).transpose(1, 3);  // [B*heads, blocks, bsd^2, d]
  auto kv = torch::constant_pad_nd(kv_(x), {halo_size_, halo_size_, halo_size_, halo_size_});
  kv = kv.unfold(2, win_size_, bs).unfold(3, win_size_, bs)
           .reshape({b * heads_, dim_head_qk_ + dim_head_v_, nb, -1})
           .permute({0, 2, 3, 1});
  auto kv_split = torch::split_with_sizes(kv, {dim_head_qk_, dim_head_v_}, -1);
  // Relative logits of the query tile against the window.
  const int64_t n = q.size(0), bb = q.size(1), hw = q.size(2);
  auto qp = q.reshape({-1, bsd, bsd, dim_head_qk_});
  auto rel_w = rel_logits_1d(qp, width_rel_, win_size_, {0, 1, 3, 2, 4});
  auto rel_h = rel_logits_1d(qp.transpose(1, 2), height_rel_, win_size_, {0, 3, 1, 4, 2});
  auto pos = (rel_h + rel_w).reshape({n, bb, hw, -1});
  auto attn = torch::softmax(torch::matmul(q, kv_split[0].transpose(-1, -2)) * scale_ + pos, -1);
  auto out = torch::matmul(attn, kv_split[1]).transpose(1, 3);  // [B*heads, dv, bsd^2, blocks]
  out = out.reshape({-1, bsd, bsd, nh, nw}).permute({0, 3, 1, 4, 2}).contiguous()
            .view({b, heads_ * dim_head_v_, h / block_stride_, w / block_stride_});
  if (avg_pool_) out = torch::avg_pool2d(out, {2, 2}, {2, 2});
  return out;
}

}  // namespace smp::timm::layers
