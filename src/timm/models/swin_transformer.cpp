// timm's Swin Transformer v1 (swin_transformer.py): shifted-window attention, channels-last (NHWC)
// inside, features returned NCHW. Window sizes and shifts follow timm's rule for the pretraining
// resolution; the shift mask is computed for the actual input, so other sizes work (timm's
// dynamic_mask behaviour).
#include <smp/timm.h>

#include <cmath>

#include "timm/families.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"
#include "timm/layers/mlp.h"
#include "timm/layers/window.h"
#include "timm/models/swin_frame.h"

namespace smp::timm {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

namespace swin_transformer {
namespace {

struct SwinConfig {
  int64_t embed_dim;
  std::vector<int64_t> depths, num_heads, window_sizes;  // window size per stage
  int64_t img_size = 224;
};

nn::LayerNorm layer_norm(int64_t dim) { return nn::LayerNorm(nn::LayerNormOptions({dim})); }

class WindowAttentionImpl : public nn::Module {
 public:
  WindowAttentionImpl(int64_t dim, int64_t heads, int64_t wh, int64_t ww) : heads_(heads), area_(wh * ww) {
    relative_position_bias_table =
        register_parameter("relative_position_bias_table", torch::zeros({(2 * wh - 1) * (2 * ww - 1), heads}));
    // timm keeps the index as a non-persistent buffer: plain data here, not part of checkpoints.
    auto coords = torch::stack(torch::meshgrid({torch::arange(wh), torch::arange(ww)}, "ij")).flatten(1);
    auto rel = (coords.unsqueeze(2) - coords.unsqueeze(1)).permute({1, 2, 0}).contiguous();
    rel.select(2, 0).add_(wh - 1).mul_(2 * ww - 1);
    rel.select(2, 1).add_(ww - 1);
    index_ = rel.sum(-1).view(-1);
    qkv = register_module("qkv", nn::Linear(dim, dim * 3));
    proj = register_module("proj", nn::Linear(dim, dim));
  }
  // x: [nW * B, N, C]; mask: [nW, N, N] or undefined.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask) {
    const auto b = x.size(0), n = x.size(1), c = x.size(2), hd = c / heads_;
    auto t = qkv(x).reshape({b, n, 3, heads_, hd}).permute({2, 0, 3, 1, 4});
    auto attn = torch::matmul(t[0] * std::pow(static_cast<double>(hd), -0.5), t[1].transpose(-2, -1));
    auto bias = relative_position_bias_table.index_select(0, index_.to(x.device())).view({area_, area_, -1});
    attn = attn + bias.permute({2, 0, 1}).unsqueeze(0);
    if (mask.defined()) {
      const auto nw = mask.size(0);
      attn = (attn.view({-1, nw, heads_, n, n}) + mask.unsqueeze(1).unsqueeze(0)).view({-1, heads_, n, n});
    }
    return proj(torch::matmul(attn.softmax(-1), t[2]).transpose(1, 2).reshape({b, n, c}));
  }
  torch::Tensor relative_position_bias_table;

 private:
  int64_t heads_, area_;
  torch::Tensor index_;
  nn::Linear qkv{nullptr}, proj{nullptr};
};
TORCH_MODULE(WindowAttention);

class SwinBlockImpl : public nn::Module {
 public:
  // `resolution`: the stage's grid at the pretraining size, which fixes window and shift as timm does.
  SwinBlockImpl(int64_t dim, int64_t heads, int64_t window, bool shifted, int64_t resolution, double drop_path_rate)
      : drop_path_rate_(drop_path_rate) {
    window_ = resolution <= window ? resolution : window;
    shift_ = (!shifted || resolution <= window_) ? 0 : window / 2;
    norm1 = register_module("norm1", layer_norm(dim));
    attn = register_module("attn", WindowAttention(dim, heads, window_, window_));
    norm2 = register_module("norm2", layer_norm(dim));
    mlp = register_module("mlp", layers::Mlp(layers::MlpOptions(dim, 4 * dim)));
  }
  torch::Tensor forward(const torch::Tensor& x) {  // NHWC
    const auto b = x.size(0), h = x.size(1), w = x.size(2), c = x.size(3);
    auto attend = [this](const torch::Tensor& windows, const torch::Tensor& mask) { return attn(windows, mask); };
    auto y = x + layers::drop_path(layers::shifted_window_attention(norm1(x), window_, window_, shift_, shift_, attend),
                                   drop_path_rate_, is_training());
    auto flat = y.reshape({b, -1, c});
    flat = flat + layers::drop_path(mlp(norm2(flat)), drop_path_rate_, is_training());
    return flat.reshape({b, h, w, c});
  }

 private:
  double drop_path_rate_;
  int64_t window_, shift_;
  nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  WindowAttention attn{nullptr};
  layers::Mlp mlp{nullptr};
};
TORCH_MODULE(SwinBlock);

class PatchMergingImpl : public nn::Module {
 public:
  PatchMergingImpl(int64_t dim, int64_t out) {
    norm = register_module("norm", layer_norm(4 * dim));
    reduction = register_module("reduction", nn::Linear(nn::LinearOptions(4 * dim, out).bias(false)));
  }
  torch::Tensor forward(const torch::Tensor& x) {  // NHWC, odd sizes padded
    auto y = F::pad(x, F::PadFuncOptions({0, 0, 0, x.size(2) % 2, 0, x.size(1) % 2}));
    const auto b = y.size(0), h = y.size(1), w = y.size(2), c = y.size(3);
    y = y.reshape({b, h / 2, 2, w / 2, 2, c}).permute({0, 1, 3, 4, 2, 5}).flatten(3);
    return reduction(norm(y));
  }

 private:
  nn::LayerNorm norm{nullptr};
  nn::Linear reduction{nullptr};
};
TORCH_MODULE(PatchMerging);

// Optional patch merging, then one block per stochastic depth rate.
class SwinStageImpl : public nn::Module {
 public:
  SwinStageImpl(int64_t in, int64_t out, const std::vector<double>& drop_path_rates, int64_t heads, int64_t window,
                int64_t resolution) {
    if (in != out) downsample = register_module("downsample", PatchMerging(in, out));
    blocks = register_module("blocks", nn::Sequential());
    for (size_t i = 0; i < drop_path_rates.size(); ++i)
      blocks->push_back(SwinBlock(out, heads, window, i % 2 == 1, resolution, drop_path_rates[i]));
  }
  torch::Tensor forward(torch::Tensor x) {
    if (downsample) x = downsample(x);
    return blocks->forward(x);
  }

 private:
  PatchMerging downsample{nullptr};
  nn::Sequential blocks{nullptr};
};
TORCH_MODULE(SwinStage);

class SwinTransformerImpl : public swin_frame::SwinFrameImpl {
 public:
  SwinTransformerImpl(const std::string& name, const SwinConfig& c, const ModelArgs& args)
      : SwinFrameImpl(name, args, {"layers", c.embed_dim, c.depths, c.img_size, true},
                      [&c](const swin_frame::StageArgs& s) {
                        const auto u = static_cast<size_t>(s.index);
                        return nn::AnyModule(
                            SwinStage(s.in, s.out, s.drop_path_rates, c.num_heads[u], c.window_sizes[u], s.grid));
                      }) {}
};

}  // namespace

void register_family() {
  const std::vector<int64_t> tiny{2, 2, 6, 2}, deep{2, 2, 18, 2}, h3{3, 6, 12, 24}, h4{4, 8, 16, 32}, h6{6, 12, 24, 48};
  auto w = [](int64_t v) { return std::vector<int64_t>(4, v); };
  const std::vector<std::pair<std::string, SwinConfig>> models = {
      {"swin_tiny_patch4_window7_224", {96, tiny, h3, w(7)}},
      {"swin_small_patch4_window7_224", {96, deep, h3, w(7)}},
      {"swin_base_patch4_window7_224", {128, deep, h4, w(7)}},
      {"swin_base_patch4_window12_384", {128, deep, h4, w(12), 384}},
      {"swin_large_patch4_window7_224", {192, deep, h6, w(7)}},
      {"swin_large_patch4_window12_384", {192, deep, h6, w(12), 384}},
      {"swin_s3_tiny_224", {96, tiny, h3, {7, 7, 14, 7}}},
      {"swin_s3_small_224", {96, deep, h3, {14, 14, 14, 7}}},
      {"swin_s3_base_224", {96, {2, 2, 30, 2}, h3, {7, 7, 14, 7}}},
  };
  register_configs<SwinTransformerImpl>("swin_transformer", models);
}

}  // namespace swin_transformer
}  // namespace smp::timm
