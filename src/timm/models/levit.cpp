// timm's LeViT (levit.py), token (levit_*) and convolutional (levit_conv_*) forms, with the
// distillation head timm builds by default. Attention biases are learned per position of the
// pretraining grid (224 / 16), so inputs must have that size.
#include <smp/modules.h>
#include <smp/timm.h>

#include <cmath>

#include "timm/families.h"
#include "timm/layers/activations.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"

namespace smp::timm {

namespace nn = torch::nn;

namespace levit {
namespace {

struct LevitConfig {
  std::vector<int64_t> embed_dim;
  int64_t key_dim;
  std::vector<int64_t> num_heads, depth;
  std::string act = "hard_swish";
  bool stem8 = false;
  bool use_conv = false;
  bool distilled = true;  // a second (distillation) head, averaged with the first
};
constexpr int64_t kImgSize = 224;

// A bias-free linear map (1x1-style conv or Linear over tokens) followed by batch norm.
class LinearNormImpl : public nn::Module {
 public:
  LinearNormImpl(int64_t in, int64_t out, bool conv, int64_t k = 1, int64_t stride = 1, int64_t pad = 0) : conv_(conv) {
    if (conv) {
      conv_linear = register_module("linear", nn::Conv2d(nn::Conv2dOptions(in, out, k).stride(stride).padding(pad).bias(false)));
      bn2d = register_module("bn", nn::BatchNorm2d(out));
    } else {
      linear = register_module("linear", nn::Linear(nn::LinearOptions(in, out).bias(false)));
      bn1d = register_module("bn", nn::BatchNorm1d(out));
    }
  }
  torch::Tensor forward(const torch::Tensor& x) {
    if (conv_) return bn2d(conv_linear(x));
    auto y = linear(x);
    return bn1d(y.flatten(0, 1)).reshape(y.sizes());
  }

 private:
  bool conv_;
  nn::Conv2d conv_linear{nullptr};
  nn::Linear linear{nullptr};
  nn::BatchNorm2d bn2d{nullptr};
  nn::BatchNorm1d bn1d{nullptr};
};
TORCH_MODULE(LinearNorm);

// Relative-position attention biases: a table per head indexed by |dy| * w + |dx|.
torch::Tensor bias_index(int64_t res, int64_t q_stride) {
  auto k = torch::stack(torch::meshgrid({torch::arange(res), torch::arange(res)}, "ij")).flatten(1);
  auto q = torch::stack(torch::meshgrid({torch::arange(0, res, q_stride), torch::arange(0, res, q_stride)}, "ij")).flatten(1);
  auto rel = (q.unsqueeze(2) - k.unsqueeze(1)).abs();
  return rel[0] * res + rel[1];
}

class ProjImpl : public nn::Module {  // act -> LinearNorm, registered as proj.ln
 public:
  ProjImpl(int64_t in, int64_t out, const std::string& act, bool conv) : act_(layers::get_act(act)) {
    ln = register_module("ln", LinearNorm(in, out, conv));
  }
  torch::Tensor forward(const torch::Tensor& x) { return ln(act_(x)); }

 private:
  layers::ActFn act_;
  LinearNorm ln{nullptr};
};
TORCH_MODULE(Proj);

class LevitAttentionImpl : public nn::Module {
 public:
  LevitAttentionImpl(int64_t dim, int64_t key_dim, int64_t heads, double attn_ratio, int64_t res, const LevitConfig& c)
      : heads_(heads), key_dim_(key_dim), val_dim_(static_cast<int64_t>(attn_ratio * static_cast<double>(key_dim))),
        conv_(c.use_conv) {
    qkv = register_module("qkv", LinearNorm(dim, heads * (val_dim_ + 2 * key_dim), conv_));
    proj = register_module("proj", Proj(heads * val_dim_, dim, c.act, conv_));
    attention_biases = register_parameter("attention_biases", torch::zeros({heads, res * res}));
    idx_ = bias_index(res, 1);
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const double scale = std::pow(static_cast<double>(key_dim_), -0.5);
    auto bias = attention_biases.index({torch::indexing::Slice(), idx_.to(x.device())});
    if (conv_) {
      const auto b = x.size(0), h = x.size(2), w = x.size(3);
      auto parts = qkv(x).view({b, heads_, -1, h * w}).split_with_sizes({key_dim_, key_dim_, val_dim_}, 2);
      auto attn = (torch::matmul(parts[0].transpose(-2, -1), parts[1]) * scale + bias).softmax(-1);
      return proj(torch::matmul(parts[2], attn.transpose(-2, -1)).view({b, -1, h, w}));
    }
    const auto b = x.size(0), n = x.size(1);
    auto parts = qkv(x).view({b, n, heads_, -1}).split_with_sizes({key_dim_, key_dim_, val_dim_}, 3);
    auto q = parts[0].permute({0, 2, 1, 3}), k = parts[1].permute({0, 2, 3, 1}), v = parts[2].permute({0, 2, 1, 3});
    auto attn = (torch::matmul(q, k) * scale + bias).softmax(-1);
    return proj(torch::matmul(attn, v).transpose(1, 2).reshape({b, n, heads_ * val_dim_}));
  }
  torch::Tensor attention_biases;

 private:
  int64_t heads_, key_dim_, val_dim_;
  bool conv_;
  torch::Tensor idx_;
  LinearNorm qkv{nullptr};
  Proj proj{nullptr};
};
TORCH_MODULE(LevitAttention);

// Query subsampling: every second token of the res x res grid.
class SubsampleQueryImpl : public nn::Module {
 public:
  SubsampleQueryImpl(int64_t in, int64_t out, int64_t res, bool conv) : res_(res), conv_(conv) {
    ln = register_module("ln", LinearNorm(in, out, conv));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    if (conv_) return ln(x.slice(2, 0, x.size(2), 2).slice(3, 0, x.size(3), 2));
    const auto b = x.size(0), c = x.size(2);
    auto y = x.view({b, res_, res_, c}).slice(1, 0, res_, 2).slice(2, 0, res_, 2).reshape({b, -1, c});
    return ln(y);
  }

 private:
  int64_t res_;
  bool conv_;
  LinearNorm ln{nullptr};
};
TORCH_MODULE(SubsampleQuery);

class AttentionDownsampleImpl : public nn::Module {
 public:
  AttentionDownsampleImpl(int64_t in, int64_t out, int64_t key_dim, int64_t heads, int64_t res, const LevitConfig& c)
      : heads_(heads), key_dim_(key_dim), val_dim_(4 * key_dim), conv_(c.use_conv), res_out_((res - 1) / 2 + 1) {
    kv = register_module("kv", LinearNorm(in, heads * (val_dim_ + key_dim), conv_));
    q = register_module("q", SubsampleQuery(in, heads * key_dim, res, conv_));
    proj = register_module("proj", Proj(heads * val_dim_, out, c.act, conv_));
    attention_biases = register_parameter("attention_biases", torch::zeros({heads, res * res}));
    idx_ = bias_index(res, 2);
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const double scale = std::pow(static_cast<double>(key_dim_), -0.5);
    auto bias = attention_biases.index({torch::indexing::Slice(), idx_.to(x.device())});
    if (conv_) {
      const auto b = x.size(0), h = x.size(2), w = x.size(3);
      auto parts = kv(x).view({b, heads_, -1, h * w}).split_with_sizes({key_dim_, val_dim_}, 2);
      auto qh = q(x).view({b, heads_, key_dim_, -1});
      auto attn = (torch::matmul(qh.transpose(-2, -1), parts[0]) * scale + bias).softmax(-1);
      return proj(torch::matmul(parts[1], attn.transpose(-2, -1)).reshape({b, -1, (h - 1) / 2 + 1, (w - 1) / 2 + 1}));
    }
    const auto b = x.size(0), n = x.size(1);
    auto parts = kv(x).view({b, n, heads_, -1}).split_with_sizes({key_dim_, val_dim_}, 3);
    auto k = parts[0].permute({0, 2, 3, 1}), v = parts[1].permute({0, 2, 1, 3});
    auto qh = q(x).view({b, -1, heads_, key_dim_}).permute({0, 2, 1, 3});
    auto attn = (torch::matmul(qh, k) * scale + bias).softmax(-1);
    return proj(torch::matmul(attn, v).transpose(1, 2).reshape({b, -1, heads_ * val_dim_}));
  }
  torch::Tensor attention_biases;

 private:
  int64_t heads_, key_dim_, val_dim_;
  bool conv_;
  int64_t res_out_;
  torch::Tensor idx_;
  LinearNorm kv{nullptr};
  SubsampleQuery q{nullptr};
  Proj proj{nullptr};
};
TORCH_MODULE(AttentionDownsample);

class LevitMlpImpl : public nn::Module {
 public:
  LevitMlpImpl(int64_t dim, int64_t hidden, const LevitConfig& c) : act_(layers::get_act(c.act)) {
    ln1 = register_module("ln1", LinearNorm(dim, hidden, c.use_conv));
    ln2 = register_module("ln2", LinearNorm(hidden, dim, c.use_conv));
  }
  torch::Tensor forward(const torch::Tensor& x) { return ln2(act_(ln1(x))); }

 private:
  layers::ActFn act_;
  LinearNorm ln1{nullptr}, ln2{nullptr};
};
TORCH_MODULE(LevitMlp);

class LevitBlockImpl : public nn::Module {
 public:
  LevitBlockImpl(int64_t dim, int64_t heads, int64_t res, const LevitConfig& c, double drop_path_rate)
      : drop_path_rate_(drop_path_rate) {
    attn = register_module("attn", LevitAttention(dim, c.key_dim, heads, 2.0, res, c));
    mlp = register_module("mlp", LevitMlp(dim, 2 * dim, c));
  }
  torch::Tensor forward(torch::Tensor x) {
    x = x + layers::drop_path(attn(x), drop_path_rate_, is_training());
    return x + layers::drop_path(mlp(x), drop_path_rate_, is_training());
  }

 private:
  double drop_path_rate_;
  LevitAttention attn{nullptr};
  LevitMlp mlp{nullptr};
};
TORCH_MODULE(LevitBlock);

class LevitDownsampleImpl : public nn::Module {
 public:
  LevitDownsampleImpl(int64_t in, int64_t out, int64_t res, const LevitConfig& c, double drop_path_rate)
      : drop_path_rate_(drop_path_rate) {
    attn_downsample = register_module("attn_downsample", AttentionDownsample(in, out, c.key_dim, in / c.key_dim, res, c));
    mlp = register_module("mlp", LevitMlp(out, 2 * out, c));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = attn_downsample(x);
    return y + layers::drop_path(mlp(y), drop_path_rate_, is_training());
  }

 private:
  double drop_path_rate_;
  AttentionDownsample attn_downsample{nullptr};
  LevitMlp mlp{nullptr};
};
TORCH_MODULE(LevitDownsample);

// timm gives every residual branch of LeViT the same stochastic depth rate (no per-block schedule).
class LevitStageImpl : public nn::Module {
 public:
  LevitStageImpl(int64_t in, int64_t out, int64_t depth, int64_t heads, int64_t& res, const LevitConfig& c,
                 double drop_path_rate) {
    if (in != out) {
      downsample = register_module("downsample", LevitDownsample(in, out, res, c, drop_path_rate));
      res = (res - 1) / 2 + 1;
    }
    blocks = register_module("blocks", nn::Sequential());
    for (int64_t i = 0; i < depth; ++i) blocks->push_back(LevitBlock(out, heads, res, c, drop_path_rate));
  }
  torch::Tensor forward(torch::Tensor x) {
    if (downsample) x = downsample(x);
    return blocks->forward(x);
  }

 private:
  LevitDownsample downsample{nullptr};
  nn::Sequential blocks{nullptr};
};
TORCH_MODULE(LevitStage);

// timm's NormLinear head: BatchNorm1d, dropout, then Linear.
class NormLinearImpl : public nn::Module {
 public:
  NormLinearImpl(int64_t in, int64_t out, double drop_rate) : drop_rate_(drop_rate) {
    bn = register_module("bn", nn::BatchNorm1d(in));
    linear = register_module("linear", nn::Linear(in, out));
  }
  torch::Tensor forward(const torch::Tensor& x) { return linear(layers::dropout(bn(x), drop_rate_, is_training())); }

 private:
  double drop_rate_;
  nn::BatchNorm1d bn{nullptr};
  nn::Linear linear{nullptr};
};
TORCH_MODULE(NormLinear);

class LevitImpl : public BackboneImpl {
 public:
  LevitImpl(const std::string& name, const LevitConfig& c, const ModelArgs& args)
      : BackboneImpl(name, args), cfg_(c) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " supports output_stride 32 only (got " +
                                  std::to_string(args.output_stride()) + ")");
    const auto d0 = c.embed_dim[0];
    const std::vector<int64_t> widths = c.stem8 ? std::vector<int64_t>{d0 / 4, d0 / 2, d0}
                                                : std::vector<int64_t>{d0 / 8, d0 / 4, d0 / 2, d0};
    stem = register_module("stem", Block());
    int64_t in = args.in_chans();
    for (size_t i = 0; i < widths.size(); ++i) {
      if (i > 0) stem->push_back("act" + std::to_string(i), nn::Functional(layers::get_act(c.act)));
      stem->push_back("conv" + std::to_string(i + 1), LinearNorm(in, widths[i], true, 3, 2, 1));
      in = widths[i];
    }
    const int64_t stride = c.stem8 ? 8 : 16;
    res_ = kImgSize / stride;
    const auto n = static_cast<int64_t>(c.embed_dim.size());
    const int64_t last = layers::last_feature_index(args, n, name);
    stages = register_module("stages", nn::Sequential());
    int64_t res = res_;
    for (int64_t i = 0; i < n; ++i) {
      const auto u = static_cast<size_t>(i);
      feature_info_.push_back({"stages." + std::to_string(i), c.embed_dim[u], stride << i});
      if (i <= last)
        stages->push_back(LevitStage(i == 0 ? d0 : c.embed_dim[u - 1], c.embed_dim[u], c.depth[u], c.num_heads[u],
                                     res, c, args.drop_path_rate()));
    }
    if (args.features_only() || args.num_classes() <= 0) return;
    head = register_module("head", NormLinear(c.embed_dim.back(), args.num_classes(), args.drop_rate()));
    // As in timm, only the first head has dropout.
    if (c.distilled) head_dist = register_module("head_dist", NormLinear(c.embed_dim.back(), args.num_classes(), 0.0));
  }

  FeatureWrap feature_wrap() const override { return cfg_.use_conv ? FeatureWrap::kModuleList : FeatureWrap::kGetter; }
  std::vector<std::string> flattened_children() const override { return {"stem", "stages"}; }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    layers::check_feature_indices(indices, static_cast<int64_t>(stages->size()), model_name());
    check_size(x);
    auto y = stem->forward(x);
    const auto b = y.size(0);
    int64_t h = y.size(2), w = y.size(3);
    if (!cfg_.use_conv) y = y.flatten(2).transpose(1, 2);
    std::vector<torch::Tensor> out;
    for (int64_t i = 0; out.size() < indices.size(); ++i) {
      y = stages[static_cast<size_t>(i)]->as<LevitStage>()->forward(y);
      if (i > 0) {
        h = (h - 1) / 2 + 1;
        w = (w - 1) / 2 + 1;
      }
      if (i == indices[out.size()])
        out.push_back(cfg_.use_conv ? y : y.reshape({b, h, w, -1}).permute({0, 3, 1, 2}).contiguous());
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    check_size(x);
    auto y = stem->forward(x);
    if (!cfg_.use_conv) y = y.flatten(2).transpose(1, 2);
    y = stages->forward(y);
    y = cfg_.use_conv ? y.mean({2, 3}) : y.mean(1);
    if (!head) return y;
    return head_dist ? (head(y) + head_dist(y)) / 2 : head(y);
  }

  std::string first_conv() const override { return "stem.conv1.linear"; }

 private:
  void check_size(const torch::Tensor& x) const {
    if (x.size(2) != kImgSize || x.size(3) != kImgSize)
      throw std::invalid_argument(model_name() + " needs " + std::to_string(kImgSize) + "x" + std::to_string(kImgSize) +
                                  " inputs (its attention biases are learned per position of that grid); got " +
                                  std::to_string(x.size(2)) + "x" + std::to_string(x.size(3)));
  }

  LevitConfig cfg_;
  int64_t res_;
  Block stem{nullptr};
  nn::Sequential stages{nullptr};
  NormLinear head{nullptr}, head_dist{nullptr};
};

}  // namespace

void register_family() {
  const std::vector<std::pair<std::string, LevitConfig>> base = {
      {"levit_128s", {{128, 256, 384}, 16, {4, 6, 8}, {2, 3, 4}}},
      {"levit_128", {{128, 256, 384}, 16, {4, 8, 12}, {4, 4, 4}}},
      {"levit_192", {{192, 288, 384}, 32, {3, 5, 6}, {4, 4, 4}}},
      {"levit_256", {{256, 384, 512}, 32, {4, 6, 8}, {4, 4, 4}}},
      {"levit_384", {{384, 512, 768}, 32, {6, 9, 12}, {4, 4, 4}}},
      {"levit_384_s8", {{384, 512, 768}, 32, {6, 9, 12}, {4, 4, 4}, "silu", true}},
      {"levit_512_s8", {{512, 640, 896}, 64, {8, 10, 14}, {4, 4, 4}, "silu", true, false, false}},
      {"levit_512", {{512, 768, 1024}, 64, {8, 12, 16}, {4, 4, 4}, "silu", false, false, false}},
      {"levit_256d", {{256, 384, 512}, 32, {4, 6, 8}, {4, 8, 6}, "silu", false, false, false}},
      {"levit_512d", {{512, 640, 768}, 64, {8, 10, 12}, {4, 8, 6}, "silu", false, false, false}},
  };
  for (const auto& [name, cfg] : base) {
    for (bool conv : {false, true}) {
      ModelEntry entry;
      entry.name = conv ? "levit_conv_" + name.substr(6) : name;
      entry.family = "levit";
      auto c = cfg;
      c.use_conv = conv;
      entry.create = [name = entry.name, c](const ModelArgs& args) -> Backbone {
        return std::make_shared<LevitImpl>(name, c, args);
      };
      register_model(std::move(entry));
    }
  }
}

}  // namespace levit
}  // namespace smp::timm
