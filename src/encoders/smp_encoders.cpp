// smp's own encoders (names without "tu-"): torchvision-style ResNet/ResNeXt and the SegFormer
// Mix Transformer (mit_b0 .. mit_b5), with smp's parameter names so smp checkpoints load unchanged.
#include "encoders/smp_encoders.h"

#include <fmt/format.h>

#include <cmath>

#include <smp/hub.h>
#include <smp/io.h>

#include "timm/layers/drop_path.h"
#include "timm/models/resnet_blocks.h"
#include "util/registry.h"
#include "util/strings.h"

namespace smp {

namespace nn = torch::nn;
namespace F = torch::nn::functional;
namespace rb = timm::resnet_blocks;
namespace tl = timm::layers;

namespace {

void check_depth(const std::string& name, int64_t depth) {
  if (depth < 1 || depth > 5)
    throw std::invalid_argument(fmt::format("{}: encoder_depth should be in range [1, 5], got {}", name, depth));
}

// Loads a safetensors file into `encoder`, dropping the classifier keys smp's encoders drop and
// adapting the first conv to other input channel counts as smp's patch_first_conv does.
void load_weights(nn::Module& encoder, const std::string& path, const std::string& head_prefix,
                  const std::string& first_conv_weight) {
  if (path.empty()) return;
  const auto file = io::read_safetensors(path);
  io::load_state_dict(encoder, file.tensors,
                      io::LoadOptions()
                          .rename([head_prefix](const std::string& k) {
                            return k.rfind(head_prefix, 0) == 0 ? std::string() : k;
                          })
                          .first_conv_weight(first_conv_weight));
}

// ---------------------------------------------------------------- ResNet / ResNeXt
struct ResNetSpec {
  bool bottleneck;
  std::vector<int64_t> layers;
  int64_t groups = 1, width_per_group = 64;
};

class ResNetEncoderImpl : public EncoderImpl {
 public:
  ResNetEncoderImpl(const ResNetSpec& spec, const EncoderOptions& o) : depth_(o.depth()) {
    check_depth(o.name(), depth_);
    if (o.output_stride() != 32 && o.output_stride() != 16 && o.output_stride() != 8)
      throw std::invalid_argument(fmt::format("Output stride should be 16 or 8, got {}.", o.output_stride()));
    output_stride_ = o.output_stride();
    const int64_t expansion = spec.bottleneck ? 4 : 1;
    conv1 = register_module("conv1", nn::Conv2d(nn::Conv2dOptions(o.in_channels(), 64, 7).stride(2).padding(3).bias(false)));
    bn1 = register_module("bn1", nn::BatchNorm2d(64));
    int64_t inplanes = 64;
    out_channels_ = {o.in_channels(), 64};
    const std::vector<int64_t> planes = {64, 128, 256, 512};
    for (size_t s = 0; s < 4; ++s) {
      // smp's make_dilated: stages past the output stride trade their stride for dilation.
      const int64_t stage_stride = int64_t{4} << s;
      const int64_t dilation = stage_stride > output_stride_ ? stage_stride / output_stride_ : 1;
      const int64_t stride = s == 0 || dilation > 1 ? 1 : 2;
      nn::Sequential layer;
      for (int64_t b = 0; b < spec.layers[s]; ++b) {
        rb::BlockArgs a{};
        a.inplanes = inplanes;
        a.width = spec.bottleneck
                      ? static_cast<int64_t>(static_cast<double>(planes[s]) * (static_cast<double>(spec.width_per_group) / 64.0)) *
                            spec.groups
                      : planes[s];
        a.first_planes = a.width;
        a.outplanes = planes[s] * expansion;
        a.stride = b == 0 ? stride : 1;
        a.dilation = a.first_dilation = dilation;
        a.cardinality = spec.groups;
        a.group_norm = false;
        if (b == 0 && (stride != 1 || inplanes != a.outplanes))
          a.downsample = nn::Sequential(nn::Conv2d(nn::Conv2dOptions(inplanes, a.outplanes, 1).stride(stride).bias(false)),
                                        nn::BatchNorm2d(a.outplanes));
        if (spec.bottleneck)
          layer->push_back(rb::Bottleneck(a));
        else
          layer->push_back(rb::BasicBlock(a));
        inplanes = a.outplanes;
      }
      layers_.push_back(register_module("layer" + std::to_string(s + 1), layer));
      out_channels_.push_back(inplanes);
    }
    out_channels_.resize(static_cast<size_t>(depth_ + 1));
    load_weights(*this, o.weights(), "fc.", "conv1.weight");
  }

  std::vector<torch::Tensor> forward(const torch::Tensor& x) override {
    std::vector<torch::Tensor> features{x};
    auto y = torch::relu(bn1(conv1(x)));
    features.push_back(y);
    if (depth_ >= 2) y = F::max_pool2d(y, F::MaxPool2dFuncOptions(3).stride(2).padding(1));
    for (int64_t s = 0; s + 2 <= depth_; ++s) {
      y = layers_[static_cast<size_t>(s)]->forward(y);
      features.push_back(y);
    }
    return features;
  }
  std::vector<int64_t> out_channels() const override { return out_channels_; }
  int64_t depth() const override { return depth_; }
  int64_t output_stride() const override { return std::min(output_stride_, int64_t{1} << depth_); }

 private:
  int64_t depth_, output_stride_ = 32;
  std::vector<int64_t> out_channels_;
  nn::Conv2d conv1{nullptr};
  nn::BatchNorm2d bn1{nullptr};
  std::vector<nn::Sequential> layers_;
};

// ---------------------------------------------------------------- Mix Transformer
struct MitSpec {
  std::vector<int64_t> embed_dims, depths;
};
const std::vector<int64_t> kMitHeads = {1, 2, 5, 8};
const std::vector<int64_t> kMitSrRatios = {8, 4, 2, 1};
constexpr double kMitEps = 1e-6;
constexpr int64_t kMitMlpRatio = 4;

nn::LayerNorm layer_norm(int64_t dim) { return nn::LayerNorm(nn::LayerNormOptions({dim}).eps(kMitEps)); }

// LayerNorm over the channels of an NCHW map.
torch::Tensor norm_2d(nn::LayerNorm& norm, const torch::Tensor& x) {
  const auto n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  auto t = norm->forward(x.view({n, c, -1}).transpose(1, 2));
  return t.transpose(1, 2).reshape({n, c, h, w});
}

// smp's MiT applies its drop_rate after the attention's projection and, in the MLP, after the
// activation and after fc2.
class MitAttentionImpl : public nn::Module {
 public:
  MitAttentionImpl(int64_t dim, int64_t heads, int64_t sr_ratio, double drop_rate)
      : heads_(heads), sr_ratio_(sr_ratio), drop_rate_(drop_rate) {
    q = register_module("q", nn::Linear(dim, dim));
    kv = register_module("kv", nn::Linear(dim, dim * 2));
    proj = register_module("proj", nn::Linear(dim, dim));
    if (sr_ratio > 1) {
      sr = register_module("sr", nn::Conv2d(nn::Conv2dOptions(dim, dim, sr_ratio).stride(sr_ratio)));
      norm = register_module("norm", layer_norm(dim));
    }
  }
  // x: [B, N, C] tokens of an h x w map.
  torch::Tensor forward(const torch::Tensor& x, int64_t h, int64_t w) {
    const auto b = x.size(0), n = x.size(1), c = x.size(2), hd = c / heads_;
    auto qh = q(x).reshape({b, n, heads_, hd}).permute({0, 2, 1, 3});
    auto src = x;
    if (sr_ratio_ > 1) {
      auto m = sr(x.permute({0, 2, 1}).reshape({b, c, h, w})).reshape({b, c, -1}).permute({0, 2, 1});
      src = norm(m);
    }
    auto kvh = kv(src).reshape({b, -1, 2, heads_, hd}).permute({2, 0, 3, 1, 4});
    auto attn = torch::matmul(qh, kvh[0].transpose(-2, -1)) * std::pow(static_cast<double>(hd), -0.5);
    auto y = torch::matmul(attn.softmax(-1), kvh[1]).transpose(1, 2).reshape({b, n, c});
    return tl::dropout(proj(y), drop_rate_, is_training());
  }

 private:
  int64_t heads_, sr_ratio_;
  double drop_rate_;
  nn::Linear q{nullptr}, kv{nullptr}, proj{nullptr};
  nn::Conv2d sr{nullptr};
  nn::LayerNorm norm{nullptr};
};
TORCH_MODULE(MitAttention);

class MitMlpImpl : public nn::Module {
 public:
  MitMlpImpl(int64_t dim, int64_t hidden, double drop_rate) : drop_rate_(drop_rate) {
    fc1 = register_module("fc1", nn::Linear(dim, hidden));
    auto dw = register_module("dwconv", std::make_shared<nn::Module>());
    dwconv = dw->register_module("dwconv", nn::Conv2d(nn::Conv2dOptions(hidden, hidden, 3).padding(1).groups(hidden)));
    fc2 = register_module("fc2", nn::Linear(hidden, dim));
  }
  torch::Tensor forward(const torch::Tensor& x, int64_t h, int64_t w) {
    auto y = fc1(x);
    const auto b = y.size(0), c = y.size(2);
    y = dwconv(y.transpose(1, 2).reshape({b, c, h, w})).flatten(2).transpose(1, 2);
    y = fc2(tl::dropout(torch::gelu(y), drop_rate_, is_training()));
    return tl::dropout(y, drop_rate_, is_training());
  }

 private:
  double drop_rate_;
  nn::Linear fc1{nullptr}, fc2{nullptr};
  nn::Conv2d dwconv{nullptr};
};
TORCH_MODULE(MitMlp);

class MitBlockImpl : public nn::Module {
 public:
  MitBlockImpl(int64_t dim, int64_t heads, int64_t sr_ratio, double drop_path_rate, double drop_rate)
      : drop_path_rate_(drop_path_rate) {
    norm1 = register_module("norm1", layer_norm(dim));
    attn = register_module("attn", MitAttention(dim, heads, sr_ratio, drop_rate));
    norm2 = register_module("norm2", layer_norm(dim));
    mlp = register_module("mlp", MitMlp(dim, dim * kMitMlpRatio, drop_rate));
  }
  torch::Tensor forward(torch::Tensor x) {
    const auto b = x.size(0), h = x.size(2), w = x.size(3);
    auto t = x.flatten(2).transpose(1, 2);
    t = t + tl::drop_path(attn(norm1(t), h, w), drop_path_rate_, is_training());
    t = t + tl::drop_path(mlp(norm2(t), h, w), drop_path_rate_, is_training());
    return t.transpose(1, 2).reshape({b, -1, h, w});
  }

 private:
  double drop_path_rate_;
  nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  MitAttention attn{nullptr};
  MitMlp mlp{nullptr};
};
TORCH_MODULE(MitBlock);

// Overlapping patch embedding: a strided conv, then LayerNorm over channels.
class OverlapPatchEmbedImpl : public nn::Module {
 public:
  OverlapPatchEmbedImpl(int64_t in, int64_t dim, int64_t patch, int64_t stride) {
    proj = register_module("proj", nn::Conv2d(nn::Conv2dOptions(in, dim, patch).stride(stride).padding(patch / 2)));
    norm = register_module("norm", layer_norm(dim));
  }
  torch::Tensor forward(const torch::Tensor& x) { return norm_2d(norm, proj(x)); }

 private:
  nn::Conv2d proj{nullptr};
  nn::LayerNorm norm{nullptr};
};
TORCH_MODULE(OverlapPatchEmbed);

class MixTransformerEncoderImpl : public EncoderImpl {
 public:
  MixTransformerEncoderImpl(const MitSpec& spec, const EncoderOptions& o) : depth_(o.depth()) {
    check_depth(o.name(), depth_);
    if (o.output_stride() != 32)
      throw std::invalid_argument(fmt::format(
          "{} supports output_stride 32 only (got {}): dilating its strided patch embeddings would change what its "
          "attention sees",
          o.name(), o.output_stride()));
    out_channels_ = {o.in_channels(), 0};
    // smp's mit_b* encoders default to drop_path_rate 0.1; EncoderOptions defaults to 0.
    const auto drop_path_rates = tl::drop_path_rates(o.drop_path_rate(), spec.depths);
    int64_t in = o.in_channels();
    for (size_t s = 0; s < 4; ++s) {
      const auto dim = spec.embed_dims[s];
      const auto id = std::to_string(s + 1);
      embeds_.push_back(register_module("patch_embed" + id, OverlapPatchEmbed(in, dim, s == 0 ? 7 : 3, s == 0 ? 4 : 2)));
      nn::Sequential blocks;
      for (const double rate : drop_path_rates[s])
        blocks->push_back(MitBlock(dim, kMitHeads[s], kMitSrRatios[s], rate, o.drop_rate()));
      blocks_.push_back(register_module("block" + id, blocks));
      norms_.push_back(register_module("norm" + id, layer_norm(dim)));
      out_channels_.push_back(dim);
      in = dim;
    }
    out_channels_.resize(static_cast<size_t>(depth_ + 1));
    load_weights(*this, o.weights(), "head.", "patch_embed1.proj.weight");
  }

  std::vector<torch::Tensor> forward(const torch::Tensor& x) override {
    // A 0-channel placeholder stands for the missing stride-2 feature.
    std::vector<torch::Tensor> features{
        x, torch::empty({x.size(0), 0, x.size(2) / 2, x.size(3) / 2}, x.options())};
    auto y = x;
    for (int64_t s = 0; s + 2 <= depth_; ++s) {
      const auto u = static_cast<size_t>(s);
      y = norm_2d(norms_[u], blocks_[u]->forward(embeds_[u](y))).contiguous();
      features.push_back(y);
    }
    return features;
  }
  std::vector<int64_t> out_channels() const override { return out_channels_; }
  int64_t depth() const override { return depth_; }
  int64_t output_stride() const override { return std::min(int64_t{32}, int64_t{1} << depth_); }

 private:
  int64_t depth_;
  std::vector<int64_t> out_channels_;
  std::vector<OverlapPatchEmbed> embeds_;
  std::vector<nn::Sequential> blocks_;
  std::vector<nn::LayerNorm> norms_;
};

using Factory = std::function<Encoder(const EncoderOptions&)>;

const util::Registry<Factory>& table() {
  static const util::Registry<Factory> t = [] {
    util::Registry<Factory> m("smp encoder");
    auto resnet = [&m](const std::string& name, ResNetSpec spec) {
      m.add(name, [spec](const EncoderOptions& o) -> Encoder { return std::make_shared<ResNetEncoderImpl>(spec, o); });
    };
    resnet("resnet18", {false, {2, 2, 2, 2}});
    resnet("resnet34", {false, {3, 4, 6, 3}});
    resnet("resnet50", {true, {3, 4, 6, 3}});
    resnet("resnet101", {true, {3, 4, 23, 3}});
    resnet("resnet152", {true, {3, 8, 36, 3}});
    resnet("resnext50_32x4d", {true, {3, 4, 6, 3}, 32, 4});
    resnet("resnext101_32x4d", {true, {3, 4, 23, 3}, 32, 4});
    resnet("resnext101_32x8d", {true, {3, 4, 23, 3}, 32, 8});
    resnet("resnext101_32x16d", {true, {3, 4, 23, 3}, 32, 16});
    resnet("resnext101_32x32d", {true, {3, 4, 23, 3}, 32, 32});
    resnet("resnext101_32x48d", {true, {3, 4, 23, 3}, 32, 48});
    auto mit = [&m](const std::string& name, MitSpec spec) {
      m.add(name, [spec](const EncoderOptions& o) -> Encoder {
        return std::make_shared<MixTransformerEncoderImpl>(spec, o);
      });
    };
    const std::vector<int64_t> wide = {64, 128, 320, 512};
    mit("mit_b0", {{32, 64, 160, 256}, {2, 2, 2, 2}});
    mit("mit_b1", {wide, {2, 2, 2, 2}});
    mit("mit_b2", {wide, {3, 4, 6, 3}});
    mit("mit_b3", {wide, {3, 4, 18, 3}});
    mit("mit_b4", {wide, {3, 8, 27, 3}});
    mit("mit_b5", {wide, {3, 6, 40, 3}});
    return m;
  }();
  return t;
}

// smp's pretrained_settings: the hub repository and pinned revision of each named set of weights.
struct PretrainedSetting {
  std::string weights, repo_id, revision;
};

const std::map<std::string, std::vector<PretrainedSetting>>& pretrained_settings() {
  static const std::map<std::string, std::vector<PretrainedSetting>> s = [] {
    std::map<std::string, std::vector<PretrainedSetting>> m;
    auto add = [&m](const std::string& encoder, const std::string& weights, const std::string& revision) {
      m[encoder].push_back({weights, "smp-hub/" + encoder + "." + weights, revision});
    };
    add("resnet18", "imagenet", "3f2325ff978283d47aa6a1d6878ca20565622683");
    add("resnet18", "ssl", "d600d5116aac2e6e595f99f40612074c723c00b2");
    add("resnet18", "swsl", "0e3a35d4d8e344088c14a96eee502a88ac70eae1");
    add("resnet34", "imagenet", "7a57b34f723329ff020b3f8bc41771163c519d0c");
    add("resnet50", "imagenet", "00cb74e366966d59cd9a35af57e618af9f88efe9");
    add("resnet50", "ssl", "d07daf5b4377f3700c6ac61906b0aafbc4eca46b");
    add("resnet50", "swsl", "b9520cce124f91c6fe7eee45721a2c7954f0d8c0");
    add("resnet101", "imagenet", "cd7c15e8c51da86ae6a084515fdb962d0c94e7d1");
    add("resnet152", "imagenet", "951dd835e9d086628e447b484584c8983f9e1dd0");
    add("resnext50_32x4d", "imagenet", "329793c85d62fd340ae42ae39fb905a63df872e7");
    add("resnext50_32x4d", "ssl", "9b67cff77d060c7044493a58c24d1007c1eb06c3");
    add("resnext50_32x4d", "swsl", "52e6e49da61b8e26ca691e1aef2cbb952884057d");
    add("resnext101_32x4d", "ssl", "b39796c8459084d13523b7016c3ef13a2e9e472b");
    add("resnext101_32x4d", "swsl", "3f8355b4892a31f001a832b49b2b01484d48516a");
    add("resnext101_32x8d", "imagenet", "221af6198d03a4ee88992f78a1ee81b46a52d339");
    add("resnext101_32x8d", "instagram", "44cd927aa6e64673ffe9d31230bad44abc18b823");
    add("resnext101_32x8d", "ssl", "723a95ddeed335c9488c37c6cbef13d779ac8f97");
    add("resnext101_32x8d", "swsl", "58cf0bb65f91365470398080d9588b187d1777c4");
    add("resnext101_32x16d", "instagram", "64e8e320eeae6501185b0627b2429a68e52d050c");
    add("resnext101_32x16d", "ssl", "1283fe03fbb6aa2599b2df24095255acb93c3d5c");
    add("resnext101_32x16d", "swsl", "30ba61bbd4d6af0d955c513dbb4f557b84eb094f");
    add("resnext101_32x32d", "instagram", "c9405de121fdaa275a89de470fb19409e3eeaa86");
    add("resnext101_32x48d", "instagram", "53e61a962b824ad7027409821f9ac3e3336dd024");
    add("mit_b0", "imagenet", "9ce53d104d92d75aabb00aae70677aaab67e7c84");
    add("mit_b1", "imagenet", "a04bf4f13a549bce677cf79b04852e7510782817");
    add("mit_b2", "imagenet", "868ab6f13871dcf8c3d9f90ee4519403475b65ef");
    add("mit_b3", "imagenet", "32558d12a65f1daa0ebcf4f4053c4285e2c1cbda");
    add("mit_b4", "imagenet", "3a3454e900a4b4f11dd60eeb59101a9a1a36b017");
    add("mit_b5", "imagenet", "ced04d96c586b6297fd59a7a1e244fc78fdb6531");
    return m;
  }();
  return s;
}

// encoder_weights as a file path: "" stays "", a path stays, a name is downloaded from smp's hub
// repository at the revision smp pins.
std::string resolve_weights(const std::string& encoder, const std::string& weights) {
  if (weights.empty() || is_weights_path(weights)) return weights;
  const auto it = pretrained_settings().find(encoder);
  std::vector<std::string> available;
  if (it != pretrained_settings().end()) {
    for (const auto& s : it->second) {
      if (s.weights == weights) return hub::hf_hub_download(s.repo_id, "model.safetensors", s.revision);
      available.push_back("'" + s.weights + "'");
    }
  }
  throw std::invalid_argument(fmt::format(
      "Wrong pretrained weights `{}` for encoder `{}`. Available options are: [{}] (or a path to a .safetensors file)",
      weights, encoder, util::join(available, ", ")));
}

}  // namespace

bool is_weights_path(const std::string& weights) {
  return weights.find('/') != std::string::npos || util::ends_with(weights, ".safetensors");
}

std::vector<std::string> list_smp_encoders() { return table().names(); }

std::vector<std::string> smp_encoder_weights(const std::string& encoder) {
  std::vector<std::string> names;
  if (const auto it = pretrained_settings().find(encoder); it != pretrained_settings().end())
    for (const auto& s : it->second) names.push_back(s.weights);
  return names;
}

Encoder create_smp_encoder(const EncoderOptions& options) {
  const auto* factory = table().find(options.name());
  if (!factory) return nullptr;
  auto resolved = options;
  return (*factory)(resolved.weights(resolve_weights(options.name(), options.weights())));
}

}  // namespace smp
