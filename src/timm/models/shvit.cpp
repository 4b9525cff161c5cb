// SHViT (timm's shvit.py): a convolutional patch embedding (stride 16), then three stages of blocks
// with a depthwise conv, an optional single-head attention over a channel slice, and a conv FFN,
// each residual; stages after the first start with a patch-merging downsample.
#include <smp/timm.h>

#include <cmath>

#include "timm/families.h"
#include "timm/layers/attention_modules.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"

namespace smp::timm {

namespace shvit {
namespace {

namespace nn = torch::nn;

// Conv (no bias, "c") then BatchNorm2d ("bn").
class Conv2dNormImpl : public nn::Module {
 public:
  Conv2dNormImpl(int64_t in, int64_t out, int64_t kernel = 1, int64_t stride = 1, int64_t padding = 0,
                 int64_t groups = 1) {
    c = register_module(
        "c", nn::Conv2d(nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).groups(groups).bias(false)));
    bn = register_module("bn", nn::BatchNorm2d(out));
  }
  torch::Tensor forward(const torch::Tensor& x) { return bn(c(x)); }

 private:
  nn::Conv2d c{nullptr};
  nn::BatchNorm2d bn{nullptr};
};
TORCH_MODULE(Conv2dNorm);

// x + m(x), the branch under "m".
class ResidualImpl : public nn::Module {
 public:
  explicit ResidualImpl(nn::AnyModule m) : m_(std::move(m)) { register_module("m", m_.ptr()); }
  torch::Tensor forward(const torch::Tensor& x) { return x + m_.forward(x); }

 private:
  nn::AnyModule m_;
};
TORCH_MODULE(Residual);

class FfnImpl : public nn::Module {
 public:
  FfnImpl(int64_t dim, int64_t hidden) {
    pw1 = register_module("pw1", Conv2dNorm(dim, hidden));
    pw2 = register_module("pw2", Conv2dNorm(hidden, dim));
  }
  torch::Tensor forward(const torch::Tensor& x) { return pw2(torch::relu(pw1(x))); }

 private:
  Conv2dNorm pw1{nullptr}, pw2{nullptr};
};
TORCH_MODULE(Ffn);

Residual dw_residual(int64_t dim) { return Residual(nn::AnyModule(Conv2dNorm(dim, dim, 3, 1, 1, dim))); }
Residual ffn_residual(int64_t dim) { return Residual(nn::AnyModule(Ffn(dim, 2 * dim))); }

// 1x1 expand (x4), strided depthwise 3x3, squeeze-excite, 1x1 project.
class PatchMergingImpl : public nn::Module {
 public:
  PatchMergingImpl(int64_t dim, int64_t out) {
    const int64_t hid = 4 * dim;
    conv1 = register_module("conv1", Conv2dNorm(dim, hid));
    conv2 = register_module("conv2", Conv2dNorm(hid, hid, 3, 2, 1, hid));
    se = register_module("se", layers::SEModule(hid, 0.25));
    conv3 = register_module("conv3", Conv2dNorm(hid, out));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return conv3(se(torch::relu(conv2(torch::relu(conv1(x))))));
  }

 private:
  Conv2dNorm conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  layers::SEModule se{nullptr};
};
TORCH_MODULE(PatchMerging);

// Single-head attention on the first `pdim` channels (GroupNorm(1) pre-norm, fused qkv conv); the
// rest pass through; ReLU then a 1x1 Conv2dNorm over all channels ("proj.1").
class ShsaImpl : public nn::Module {
 public:
  ShsaImpl(int64_t dim, int64_t qk_dim, int64_t pdim)
      : dim_(dim), qk_dim_(qk_dim), pdim_(pdim), scale_(1.0 / std::sqrt(static_cast<double>(qk_dim))) {
    pre_norm = register_module("pre_norm", nn::GroupNorm(nn::GroupNormOptions(1, pdim)));
    qkv = register_module("qkv", Conv2dNorm(pdim, 2 * qk_dim + pdim));
    auto proj = register_module("proj", std::make_shared<nn::Module>());
    proj_conv = proj->register_module("1", Conv2dNorm(dim, dim));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const int64_t b = x.size(0), h = x.size(2), w = x.size(3);
    auto parts = torch::split_with_sizes(x, {pdim_, dim_ - pdim_}, 1);
    auto qkv_out = qkv(pre_norm(parts[0]));
    auto t = torch::split_with_sizes(qkv_out, {qk_dim_, qk_dim_, pdim_}, 1);
    auto q = t[0].flatten(2), k = t[1].flatten(2), v = t[2].flatten(2);
    auto attn = torch::softmax(torch::matmul(q.transpose(-2, -1), k) * scale_, -1);
    auto x1 = torch::matmul(v, attn.transpose(-2, -1)).reshape({b, pdim_, h, w});
    return proj_conv(torch::relu(torch::cat({x1, parts[1]}, 1)));
  }

 private:
  int64_t dim_, qk_dim_, pdim_;
  double scale_;
  nn::GroupNorm pre_norm{nullptr};
  Conv2dNorm qkv{nullptr}, proj_conv{nullptr};
};
TORCH_MODULE(Shsa);

class BasicBlockImpl : public nn::Module {
 public:
  BasicBlockImpl(int64_t dim, int64_t qk_dim, int64_t pdim, bool attention) {
    conv = register_module("conv", dw_residual(dim));
    if (attention) mixer = register_module("mixer", Residual(nn::AnyModule(Shsa(dim, qk_dim, pdim))));
    ffn = register_module("ffn", ffn_residual(dim));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = conv(x);
    if (mixer) y = mixer(y);
    return ffn(y);
  }

 private:
  Residual conv{nullptr}, mixer{nullptr}, ffn{nullptr};
};
TORCH_MODULE(BasicBlock);

class StageImpl : public nn::Module {
 public:
  StageImpl(int64_t prev, int64_t dim, int64_t qk_dim, int64_t pdim, bool attention, int64_t depth) {
    if (prev != dim) {
      downsample = register_module("downsample", nn::Sequential());
      downsample->push_back(dw_residual(prev));
      downsample->push_back(ffn_residual(prev));
      downsample->push_back(PatchMerging(prev, dim));
      downsample->push_back(dw_residual(dim));
      downsample->push_back(ffn_residual(dim));
    }
    blocks = register_module("blocks", nn::Sequential());
    for (int64_t i = 0; i < depth; ++i) blocks->push_back(BasicBlock(dim, qk_dim, pdim, attention));
  }
  torch::Tensor forward(const torch::Tensor& x) { return blocks->forward(downsample ? downsample->forward(x) : x); }

 private:
  nn::Sequential downsample{nullptr}, blocks{nullptr};
};
TORCH_MODULE(Stage);

struct ShvitConfig {
  std::vector<int64_t> embed_dim, partial_dim, depth;
};

class ShvitImpl : public BackboneImpl {
 public:
  ShvitImpl(const std::string& name, const ShvitConfig& c, const ModelArgs& args) : BackboneImpl(name, args) {
    if (args.output_stride() != 32)
      throw std::invalid_argument(name + " supports output_stride 32 only (got " +
                                  std::to_string(args.output_stride()) + ")");
    const int64_t stem = c.embed_dim[0];
    auto pe = register_module("patch_embed", std::make_shared<nn::Module>());
    const std::vector<int64_t> chs = {args.in_chans(), stem / 8, stem / 4, stem / 2, stem};
    for (size_t i = 0; i < 4; ++i) {
      patch_embed_.push_back(Conv2dNorm(chs[i], chs[i + 1], 3, 2, 1));
      pe->register_module(std::to_string(2 * i), patch_embed_.back());
    }
    for (size_t i = 0; i < 3; ++i)
      feature_info_.push_back({"stages." + std::to_string(i), c.embed_dim[i], int64_t{16} << i});
    const int64_t last = layers::last_feature_index(args, 3, name);
    stages_ = register_module("stages", nn::Sequential());
    int64_t prev = stem;
    for (int64_t i = 0; i <= last; ++i) {
      const auto s = static_cast<size_t>(i);
      // The first stage has no attention ("i" blocks), the others single-head attention ("s").
      stages_->push_back(Stage(prev, c.embed_dim[s], 16, c.partial_dim[s], i > 0, c.depth[s]));
      prev = c.embed_dim[s];
    }
    if (!args.features_only() && args.num_classes() > 0) {
      auto head = register_module("head", std::make_shared<nn::Module>());
      head_bn_ = head->register_module("bn", nn::BatchNorm1d(prev));
      head_l_ = head->register_module("l", nn::Linear(prev, args.num_classes()));
    }
  }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    layers::check_feature_indices(indices, static_cast<int64_t>(stages_->size()), model_name());
    std::vector<torch::Tensor> out;
    auto y = embed(x);
    for (int64_t i = 0; out.size() < indices.size(); ++i) {
      y = stages_[static_cast<size_t>(i)]->as<Stage>()->forward(y);
      if (i == indices[out.size()]) out.push_back(y);
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    auto y = stages_->forward(embed(x)).mean({2, 3});
    y = layers::dropout(y, head_drop_rate(), is_training());
    return head_l_ ? head_l_(head_bn_(y)) : y;
  }

  std::vector<std::string> flattened_children() const override { return {"patch_embed", "stages"}; }
  std::string first_conv() const override { return "patch_embed.0.c"; }

 private:
  torch::Tensor embed(const torch::Tensor& x) {
    auto y = x;
    for (size_t i = 0; i < patch_embed_.size(); ++i) {
      y = patch_embed_[i](y);
      if (i + 1 < patch_embed_.size()) y = torch::relu(y);
    }
    return y;
  }

  std::vector<Conv2dNorm> patch_embed_;
  nn::Sequential stages_{nullptr};
  nn::BatchNorm1d head_bn_{nullptr};
  nn::Linear head_l_{nullptr};
};

}  // namespace

void register_family() {
  register_configs<ShvitImpl>("shvit", std::vector<std::pair<std::string, ShvitConfig>>{
                                           {"shvit_s1", {{128, 224, 320}, {32, 48, 68}, {2, 4, 5}}},
                                           {"shvit_s2", {{128, 308, 448}, {32, 66, 96}, {2, 4, 5}}},
                                           {"shvit_s3", {{192, 352, 448}, {48, 75, 96}, {3, 5, 5}}},
                                           {"shvit_s4", {{224, 336, 448}, {48, 72, 96}, {4, 7, 6}}},
                                       });
}

}  // namespace shvit
}  // namespace smp::timm
