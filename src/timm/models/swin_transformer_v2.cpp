// timm's Swin Transformer V2 (swin_transformer_v2.py): post-norm blocks, cosine attention with a learnt
// temperature and a continuous (MLP) relative position bias. Channels-last (NHWC) inside, features
// returned NCHW. Window and shift follow timm's rule for the pretraining resolution; the shift mask is
// made for the actual input, so other input sizes work (timm's strict_img_size=False behaviour).
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

namespace swin_transformer_v2 {
namespace {

struct SwinV2Config {
  int64_t embed_dim;
  std::vector<int64_t> depths, num_heads;
  int64_t window;
  int64_t img_size = 256;
  std::vector<int64_t> pretrained_windows = {0, 0, 0, 0};
  int64_t num_classes = 1000;
};

nn::LayerNorm layer_norm(int64_t dim) { return nn::LayerNorm(nn::LayerNormOptions({dim})); }

class WindowAttentionImpl : public nn::Module {
 public:
  WindowAttentionImpl(int64_t dim, int64_t heads, int64_t window, int64_t pretrained_window)
      : heads_(heads), window_(window) {
    logit_scale = register_parameter("logit_scale", torch::full({heads, 1, 1}, std::log(10.0)));
    q_bias = register_parameter("q_bias", torch::zeros({dim}));
    v_bias = register_parameter("v_bias", torch::zeros({dim}));
    cpb_mlp = register_module("cpb_mlp", nn::Sequential(nn::Linear(2, 512), nn::ReLU(),
                                                        nn::Linear(nn::LinearOptions(512, heads).bias(false))));
    qkv = register_module("qkv", nn::Linear(nn::LinearOptions(dim, dim * 3).bias(false)));
    proj = register_module("proj", nn::Linear(dim, dim));
    // Log-spaced relative offsets, scaled by the pretraining window when the checkpoint was trained
    // with another one (timm's non-persistent relative_coords_table).
    const double norm = static_cast<double>((pretrained_window > 0 ? pretrained_window : window) - 1);
    auto r = torch::arange(-(window - 1), window, torch::kFloat32);
    auto table = torch::stack(torch::meshgrid({r, r}, "ij"), -1) / norm * 8.0;  // [2w-1, 2w-1, 2]
    coords_table_ = (torch::sign(table) * torch::log2(table.abs() + 1.0) / std::log2(8.0)).unsqueeze(0);
    auto coords = torch::stack(torch::meshgrid({torch::arange(window), torch::arange(window)}, "ij")).flatten(1);
    auto rel = (coords.unsqueeze(2) - coords.unsqueeze(1)).permute({1, 2, 0}).contiguous();
    rel.select(2, 0).add_(window - 1).mul_(2 * window - 1);
    rel.select(2, 1).add_(window - 1);
    index_ = rel.sum(-1).view(-1);
  }

  // x: [nW * B, N, C]; mask: [nW, N, N] or undefined.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask) {
    const auto b = x.size(0), n = x.size(1), c = x.size(2);
    // timm's k bias is a zero buffer between the learnt q and v biases.
    const auto bias = torch::cat({q_bias, torch::zeros_like(q_bias), v_bias});
    auto t = F::linear(x, qkv->weight, bias).reshape({b, n, 3, heads_, -1}).permute({2, 0, 3, 1, 4});
    const auto opts = F::NormalizeFuncOptions().dim(-1);
    auto attn = torch::matmul(F::normalize(t[0], opts), F::normalize(t[1], opts).transpose(-2, -1));
    attn = attn * torch::clamp_max(logit_scale, std::log(100.0)).exp();
    const auto area = window_ * window_;
    auto rpb = cpb_mlp->forward(coords_table_.to(x.device(), x.scalar_type())).view({-1, heads_});
    rpb = rpb.index_select(0, index_.to(x.device())).view({area, area, heads_}).permute({2, 0, 1});
    attn = attn + 16.0 * torch::sigmoid(rpb).unsqueeze(0);
    if (mask.defined()) {
      const auto nw = mask.size(0);
      attn = (attn.view({-1, nw, heads_, n, n}) + mask.unsqueeze(1).unsqueeze(0)).view({-1, heads_, n, n});
    }
    return proj(torch::matmul(attn.softmax(-1), t[2]).transpose(1, 2).reshape({b, n, c}));
  }

  torch::Tensor logit_scale, q_bias, v_bias;

 private:
  int64_t heads_, window_;
  torch::Tensor coords_table_, index_;
  nn::Sequential cpb_mlp{nullptr};
  nn::Linear qkv{nullptr}, proj{nullptr};
};
TORCH_MODULE(WindowAttention);

class SwinV2BlockImpl : public nn::Module {
 public:
  // `resolution`: the stage's grid at the pretraining size, which fixes window and shift as timm does.
  SwinV2BlockImpl(int64_t dim, int64_t heads, int64_t window, bool shifted, int64_t resolution,
                  int64_t pretrained_window, double drop_path_rate)
      : drop_path_rate_(drop_path_rate) {
    window_ = resolution <= window ? resolution : window;
    shift_ = (!shifted || resolution <= window_) ? 0 : window / 2;
    attn = register_module("attn", WindowAttention(dim, heads, window_, pretrained_window));
    norm1 = register_module("norm1", layer_norm(dim));
    mlp = register_module("mlp", layers::Mlp(layers::MlpOptions(dim, 4 * dim)));
    norm2 = register_module("norm2", layer_norm(dim));
  }
  torch::Tensor forward(const torch::Tensor& x) {  // NHWC; post-norm residuals
    const auto b = x.size(0), h = x.size(1), w = x.size(2), c = x.size(3);
    auto windowed = layers::shifted_window_attention(
        x, window_, window_, shift_, shift_,
        [this](const torch::Tensor& windows, const torch::Tensor& mask) { return attn(windows, mask); });
    auto y = x + layers::drop_path(norm1(windowed), drop_path_rate_, is_training());
    auto flat = y.reshape({b, -1, c});
    flat = flat + layers::drop_path(norm2(mlp(flat)), drop_path_rate_, is_training());
    return flat.reshape({b, h, w, c});
  }

 private:
  double drop_path_rate_;
  int64_t window_, shift_;
  WindowAttention attn{nullptr};
  nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  layers::Mlp mlp{nullptr};
};
TORCH_MODULE(SwinV2Block);

// v2 merges 2x2 patches, projects, then normalises (v1 normalises first).
class PatchMergingImpl : public nn::Module {
 public:
  PatchMergingImpl(int64_t dim, int64_t out) {
    reduction = register_module("reduction", nn::Linear(nn::LinearOptions(4 * dim, out).bias(false)));
    norm = register_module("norm", layer_norm(out));
  }
  torch::Tensor forward(const torch::Tensor& x) {  // NHWC, odd sizes padded
    auto y = (x.size(1) % 2 || x.size(2) % 2) ? F::pad(x, F::PadFuncOptions({0, 0, 0, x.size(2) % 2, 0, x.size(1) % 2})) : x;
    const auto b = y.size(0), h = y.size(1), w = y.size(2), c = y.size(3);
    y = y.reshape({b, h / 2, 2, w / 2, 2, c}).permute({0, 1, 3, 4, 2, 5}).flatten(3);
    return norm(reduction(y));
  }

 private:
  nn::Linear reduction{nullptr};
  nn::LayerNorm norm{nullptr};
};
TORCH_MODULE(PatchMerging);

class SwinV2StageImpl : public nn::Module {
 public:
  SwinV2StageImpl(int64_t in, int64_t out, bool downsample_first, const std::vector<double>& drop_path_rates,
                  int64_t heads, int64_t window, int64_t resolution, int64_t pretrained_window) {
    if (downsample_first) downsample = register_module("downsample", PatchMerging(in, out));
    blocks = register_module("blocks", nn::Sequential());
    for (size_t i = 0; i < drop_path_rates.size(); ++i)
      blocks->push_back(
          SwinV2Block(out, heads, window, i % 2 == 1, resolution, pretrained_window, drop_path_rates[i]));
  }
  torch::Tensor forward(torch::Tensor x) {
    if (downsample) x = downsample(x);
    return blocks->forward(x);
  }

 private:
  PatchMerging downsample{nullptr};
  nn::Sequential blocks{nullptr};
};
TORCH_MODULE(SwinV2Stage);

class SwinTransformerV2Impl : public swin_frame::SwinFrameImpl {
 public:
  SwinTransformerV2Impl(const std::string& name, const SwinV2Config& c, const ModelArgs& args)
      : SwinFrameImpl(name, args, {"layers", c.embed_dim, c.depths, c.img_size, true},
                      [&c](const swin_frame::StageArgs& s) {
                        const auto u = static_cast<size_t>(s.index);
                        return nn::AnyModule(SwinV2Stage(s.in, s.out, s.index > 0, s.drop_path_rates, c.num_heads[u],
                                                         c.window, s.grid, c.pretrained_windows[u]));
                      }) {}
};

}  // namespace

void register_family() {
  const std::vector<int64_t> tiny{2, 2, 6, 2}, deep{2, 2, 18, 2}, h3{3, 6, 12, 24}, h4{4, 8, 16, 32},
      h6{6, 12, 24, 48}, pre{12, 12, 12, 6};
  const std::vector<std::pair<std::string, SwinV2Config>> models = {
      {"swinv2_tiny_window8_256", {96, tiny, h3, 8}},
      {"swinv2_tiny_window16_256", {96, tiny, h3, 16}},
      {"swinv2_small_window8_256", {96, deep, h3, 8}},
      {"swinv2_small_window16_256", {96, deep, h3, 16}},
      {"swinv2_base_window8_256", {128, deep, h4, 8}},
      {"swinv2_base_window16_256", {128, deep, h4, 16}},
      {"swinv2_base_window12_192", {128, deep, h4, 12, 192, {0, 0, 0, 0}, 21841}},
      {"swinv2_base_window12to16_192to256", {128, deep, h4, 16, 256, pre}},
      {"swinv2_base_window12to24_192to384", {128, deep, h4, 24, 384, pre}},
      {"swinv2_large_window12_192", {192, deep, h6, 12, 192, {0, 0, 0, 0}, 21841}},
      {"swinv2_large_window12to16_192to256", {192, deep, h6, 16, 256, pre}},
      {"swinv2_large_window12to24_192to384", {192, deep, h6, 24, 384, pre}},
  };
  register_configs<SwinTransformerV2Impl>("swin_transformer_v2", models,
                                          [](ModelEntry& entry, const SwinV2Config& c) { entry.num_classes = c.num_classes; });
}

}  // namespace swin_transformer_v2
}  // namespace smp::timm
