#include "timm/layers/pos_embed_rel.h"

#include <cmath>

#include "timm/layers/drop_path.h"

namespace smp::timm::layers {

namespace {
// [h*w, h*w, 2] offsets (query - key) per axis.
torch::Tensor offsets(int64_t h, int64_t w) {
  auto coords = torch::stack(torch::meshgrid({torch::arange(h), torch::arange(w)}, "ij")).flatten(1);
  return (coords.unsqueeze(2) - coords.unsqueeze(1)).permute({1, 2, 0});
}
}  // namespace

torch::Tensor relative_position_index(int64_t h, int64_t w, bool class_token) {
  auto rel = offsets(h, w);
  auto index = (rel.select(2, 0) + (h - 1)) * (2 * w - 1) + (rel.select(2, 1) + (w - 1));
  if (!class_token) return index.contiguous();
  const int64_t table = (2 * h - 1) * (2 * w - 1);
  auto out = torch::zeros({h * w + 1, h * w + 1}, torch::kLong);
  out.slice(0, 1).slice(1, 1).copy_(index);
  out.select(0, 0).fill_(table);
  out.select(1, 0).fill_(table + 1);
  out.index_put_({0, 0}, table + 2);
  return out;
}

RelPosBiasImpl::RelPosBiasImpl(int64_t wh, int64_t ww, int64_t num_heads, int64_t prefix_tokens)
    : n_(wh * ww + prefix_tokens) {
  relative_position_bias_table = register_parameter(
      "relative_position_bias_table", torch::zeros({(2 * wh - 1) * (2 * ww - 1) + 3 * prefix_tokens, num_heads}));
  index_ = relative_position_index(wh, ww, prefix_tokens > 0).view(-1);
}

torch::Tensor RelPosBiasImpl::get_bias() {
  const auto& t = relative_position_bias_table;
  return t.index_select(0, index_.to(t.device())).view({n_, n_, -1}).permute({2, 0, 1}).unsqueeze(0);
}

RelPosMlpImpl::RelPosMlpImpl(int64_t wh, int64_t ww, int64_t num_heads, int64_t hidden_dim, int64_t prefix_tokens,
                             const std::string& mode)
    : heads_(num_heads), n_(wh * ww), prefix_(prefix_tokens), swin_(mode == "swin") {
  if (mode != "cr" && mode != "swin") throw std::invalid_argument("RelPosMlp: unknown mode " + mode);
  auto mlp = register_module("mlp", std::make_shared<torch::nn::Module>());
  fc1_ = mlp->register_module("fc1", torch::nn::Linear(2, hidden_dim));
  fc2_ = mlp->register_module("fc2", torch::nn::Linear(torch::nn::LinearOptions(hidden_dim, num_heads).bias(!swin_)));
  index_ = relative_position_index(wh, ww).view(-1);
  auto ch = torch::arange(-(wh - 1), wh).to(torch::kFloat), cw = torch::arange(-(ww - 1), ww).to(torch::kFloat);
  auto table = torch::stack(torch::meshgrid({ch, cw}, "ij")).permute({1, 2, 0}).contiguous();
  if (swin_) {
    table.select(2, 0).div_(static_cast<double>(wh - 1));
    table.select(2, 1).div_(static_cast<double>(ww - 1));
    table.mul_(8);
    coords_ = torch::sign(table) * torch::log2(1.0 + table.abs()) / std::log2(8.0);
  } else {
    coords_ = torch::sign(table) * torch::log(1.0 + table.abs());
  }
}

torch::Tensor RelPosMlpImpl::get_bias() {
  auto hidden = layers::dropout(torch::relu(fc1_(coords_.to(fc1_->weight.device()))), 0.125, is_training());
  auto bias = fc2_(hidden).view({-1, heads_});
  bias = bias.index_select(0, index_.to(bias.device())).view({n_, n_, heads_}).permute({2, 0, 1});
  if (swin_) bias = 16 * torch::sigmoid(bias);
  if (prefix_) bias = torch::constant_pad_nd(bias, {prefix_, 0, prefix_, 0});
  return bias.unsqueeze(0);
}

RelPosBiasTfImpl::RelPosBiasTfImpl(int64_t wh, int64_t ww, int64_t num_heads) : n_(wh * ww) {
  relative_position_bias_table =
      register_parameter("relative_position_bias_table", torch::zeros({num_heads, 2 * wh - 1, 2 * ww - 1}));
  auto rel = offsets(wh, ww).neg();  // key - query
  index_ = ((rel.select(2, 0) + (wh - 1)) * (2 * ww - 1) + (rel.select(2, 1) + (ww - 1))).reshape(-1);
}

torch::Tensor RelPosBiasTfImpl::get_bias() {
  const auto& t = relative_position_bias_table;
  return t.flatten(1).index_select(1, index_.to(t.device())).view({-1, n_, n_}).unsqueeze(0);
}

}  // namespace smp::timm::layers
