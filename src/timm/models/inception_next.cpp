// InceptionNeXt (timm's inception_next.py, class MetaNeXt): ConvNeXt-style stages whose token mixer
// splits the channels into an identity part and depthwise square / horizontal band / vertical band
// convolutions.
#include <smp/timm.h>

#include "timm/families.h"
#include "timm/layers/conv2d_same.h"
#include "timm/layers/drop_path.h"
#include "timm/layers/helpers.h"
#include "timm/layers/mlp.h"
#include "timm/layers/token_norm.h"

namespace smp::timm {

namespace inception_next {
namespace {

namespace nn = torch::nn;

struct MetaNeXtConfig {
  std::vector<int64_t> depths, dims;
  int64_t band_kernel_size = 11;
  double branch_ratio = 0.125;
  std::vector<double> mlp_ratios = {4, 4, 4, 3};
};

class InceptionDWConv2dImpl : public nn::Module {
 public:
  InceptionDWConv2dImpl(int64_t channels, int64_t band_kernel, double branch_ratio, int64_t dilation) {
    const auto gc = static_cast<int64_t>(static_cast<double>(channels) * branch_ratio);
    const int64_t square_pad = layers::get_padding(3, 1, dilation), band_pad = layers::get_padding(band_kernel, 1, dilation);
    dwconv_hw_ = register_module(
        "dwconv_hw", nn::Conv2d(nn::Conv2dOptions(gc, gc, 3).padding(square_pad).dilation(dilation).groups(gc)));
    dwconv_w_ = register_module("dwconv_w", nn::Conv2d(nn::Conv2dOptions(gc, gc, {1, band_kernel})
                                                           .padding({0, band_pad})
                                                           .dilation({1, dilation})
                                                           .groups(gc)));
    dwconv_h_ = register_module("dwconv_h", nn::Conv2d(nn::Conv2dOptions(gc, gc, {band_kernel, 1})
                                                           .padding({band_pad, 0})
                                                           .dilation({dilation, 1})
                                                           .groups(gc)));
    splits_ = {channels - 3 * gc, gc, gc, gc};
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto parts = torch::split_with_sizes(x, splits_, 1);
    return torch::cat({parts[0], dwconv_hw_(parts[1]), dwconv_w_(parts[2]), dwconv_h_(parts[3])}, 1);
  }

 private:
  nn::Conv2d dwconv_hw_{nullptr}, dwconv_w_{nullptr}, dwconv_h_{nullptr};
  std::vector<int64_t> splits_;
};
TORCH_MODULE(InceptionDWConv2d);

// token mixer -> BatchNorm -> 1x1-conv MLP, scaled per channel by gamma, plus the shortcut.
class MetaNeXtBlockImpl : public nn::Module {
 public:
  MetaNeXtBlockImpl(const MetaNeXtConfig& c, int64_t dim, int64_t dilation, double mlp_ratio, double drop_path_rate)
      : drop_path_rate_(drop_path_rate) {
    gamma_ = register_parameter("gamma", torch::full({dim}, 1e-6));
    token_mixer_ =
        register_module("token_mixer", InceptionDWConv2d(dim, c.band_kernel_size, c.branch_ratio, dilation));
    norm_ = register_module("norm", nn::BatchNorm2d(dim));
    const auto hidden = static_cast<int64_t>(mlp_ratio * static_cast<double>(dim));
    mlp_ = register_module("mlp", layers::Mlp(layers::MlpOptions(dim, hidden).use_conv(true)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = mlp_(norm_(token_mixer_(x))).mul(gamma_.view({1, -1, 1, 1}));
    return layers::drop_path(y, drop_path_rate_, is_training()) + x;
  }

 private:
  double drop_path_rate_;
  torch::Tensor gamma_;
  InceptionDWConv2d token_mixer_{nullptr};
  nn::BatchNorm2d norm_{nullptr};
  layers::Mlp mlp_{nullptr};
};
TORCH_MODULE(MetaNeXtBlock);

// Optional downsample (BatchNorm + 2x2 conv) then the blocks.
class MetaNeXtStageImpl : public nn::Module {
 public:
  MetaNeXtStageImpl(const MetaNeXtConfig& c, int64_t in, int64_t out, int64_t stride, int64_t first_dilation,
                    int64_t dilation, double mlp_ratio, const std::vector<double>& dpr) {
    if (stride > 1 || first_dilation != dilation) {
      downsample_ = register_module("downsample", nn::Sequential());
      downsample_->push_back(nn::BatchNorm2d(in));
      downsample_->push_back(nn::Conv2d(nn::Conv2dOptions(in, out, 2).stride(stride).dilation(first_dilation)));
    }
    blocks_ = register_module("blocks", nn::Sequential());
    for (double rate : dpr) blocks_->push_back(MetaNeXtBlock(c, out, dilation, mlp_ratio, rate));
  }
  torch::Tensor forward(const torch::Tensor& x) { return blocks_->forward(downsample_ ? downsample_->forward(x) : x); }

 private:
  nn::Sequential downsample_{nullptr}, blocks_{nullptr};
};
TORCH_MODULE(MetaNeXtStage);

class MetaNeXtImpl : public BackboneImpl {
 public:
  MetaNeXtImpl(const std::string& name, const MetaNeXtConfig& c, const ModelArgs& args) : BackboneImpl(name, args) {
    const int64_t num_stages = static_cast<int64_t>(c.depths.size());
    const int64_t last = layers::last_feature_index(args, num_stages, name);
    const int64_t output_stride = args.output_stride();
    if (output_stride != 8 && output_stride != 16 && output_stride != 32)
      throw std::invalid_argument(name + ": output_stride must be 8, 16 or 32");

    stem_ = register_module("stem", nn::Sequential());
    stem_->push_back(nn::Conv2d(nn::Conv2dOptions(args.in_chans(), c.dims[0], 4).stride(4)));
    stem_->push_back(nn::BatchNorm2d(c.dims[0]));

    const auto dpr = layers::drop_path_rates(args.drop_path_rate(), c.depths);
    auto stages = register_module("stages", nn::ModuleList());
    int64_t prev = c.dims[0], curr_stride = 4, dilation = 1;
    for (int64_t i = 0; i < num_stages; ++i) {
      int64_t stride = curr_stride == 2 || i > 0 ? 2 : 1;
      if (curr_stride >= output_stride && stride > 1) {
        dilation *= stride;
        stride = 1;
      }
      curr_stride *= stride;
      const int64_t first_dilation = dilation == 1 || dilation == 2 ? 1 : 2;
      const auto si = static_cast<size_t>(i);
      if (i <= last) {
        stages_.push_back(MetaNeXtStage(c, prev, c.dims[si], i > 0 ? stride : 1, first_dilation, dilation,
                                        c.mlp_ratios[si], dpr[si]));
        stages->push_back(stages_.back());
      }
      prev = c.dims[si];
      feature_info_.push_back({"stages." + std::to_string(i), prev, curr_stride});
    }

    if (!args.features_only()) {
      // timm's MlpClassifierHead: pooled -> fc1 (3x wider) -> GELU -> LayerNorm -> fc2.
      auto head = register_module("head", std::make_shared<nn::Module>());
      const int64_t hidden = 3 * prev;
      fc1_ = head->register_module("fc1", nn::Linear(prev, hidden));
      head_norm_ = layers::make_token_norm({"layernorm", 1e-6}, hidden);
      head->register_module("norm", head_norm_.ptr());
      if (args.num_classes() > 0) fc2_ = head->register_module("fc2", nn::Linear(hidden, args.num_classes()));
    }
  }

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override {
    layers::check_feature_indices(indices, static_cast<int64_t>(stages_.size()), model_name());
    std::vector<torch::Tensor> out;
    if (indices.empty()) return out;
    auto y = stem_->forward(x);
    for (int64_t i = 0; out.size() < indices.size(); ++i) {
      y = stages_[static_cast<size_t>(i)](y);
      if (i == indices[out.size()]) out.push_back(y);
    }
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    check_classifier();
    auto y = stem_->forward(x);
    for (auto& stage : stages_) y = stage(y);
    auto h = head_norm_.forward(torch::gelu(fc1_(y.mean({2, 3}))));
    return classify(h, fc2_);
  }

  std::vector<std::string> flattened_children() const override { return {"stem", "stages"}; }
  std::string first_conv() const override { return "stem.0"; }

 private:
  nn::Sequential stem_{nullptr};
  std::vector<MetaNeXtStage> stages_;
  nn::Linear fc1_{nullptr}, fc2_{nullptr};
  nn::AnyModule head_norm_;
};

MetaNeXtConfig cfg(std::vector<int64_t> depths, std::vector<int64_t> dims) {
  MetaNeXtConfig c;
  c.depths = std::move(depths);
  c.dims = std::move(dims);
  return c;
}

}  // namespace

void register_family() {
  auto atto = cfg({2, 2, 6, 2}, {40, 80, 160, 320});
  atto.band_kernel_size = 9;
  atto.branch_ratio = 0.25;
  const std::vector<std::pair<std::string, MetaNeXtConfig>> models = {
      {"inception_next_atto", atto},
      {"inception_next_tiny", cfg({3, 3, 9, 3}, {96, 192, 384, 768})},
      {"inception_next_small", cfg({3, 3, 27, 3}, {96, 192, 384, 768})},
      {"inception_next_base", cfg({3, 3, 27, 3}, {128, 256, 512, 1024})},
  };
  register_configs<MetaNeXtImpl>("inception_next", models);
}

}  // namespace inception_next
}  // namespace smp::timm
