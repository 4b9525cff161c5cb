// timm's ResNet BasicBlock and Bottleneck (with their norm, attention, anti-aliasing and
// shortcut options), shared by the ResNet family and HRNet, which timm builds from the same blocks.
#pragma once

#include <torch/torch.h>

#include <smp/timm.h>

#include <functional>
#include <string>
#include <vector>

#include "timm/layers/activations.h"
#include "timm/layers/attention_modules.h"
#include "timm/layers/create_aa.h"
#include "timm/layers/drop_path.h"

namespace smp::timm::resnet_blocks {

namespace nn = torch::nn;

inline nn::AnyModule make_norm(bool group_norm, int64_t channels) {
  if (group_norm) return nn::AnyModule(nn::GroupNorm(nn::GroupNormOptions(32, channels)));
  return nn::AnyModule(nn::BatchNorm2d(channels));
}

inline nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride = 1, int64_t padding = 0, int64_t dilation = 1,
                int64_t groups = 1) {
  return nn::Conv2d(
      nn::Conv2dOptions(in, out, k).stride(stride).padding(padding).dilation(dilation).groups(groups).bias(false));
}

// timm's symmetric padding for a (possibly strided, dilated) convolution.
inline int64_t get_padding(int64_t kernel, int64_t stride, int64_t dilation) {
  return ((stride - 1) + dilation * (kernel - 1)) / 2;
}

using layers::TensorFn;

// A registered child called through a plain function: nn::Sequential cannot be held in an AnyModule.
template <typename Holder>
TensorFn forward_of(Holder module) {
  return [module](const torch::Tensor& x) mutable { return module->forward(x); };
}

struct BlockArgs {
  int64_t inplanes, first_planes, width, outplanes;
  int64_t stride, dilation, first_dilation, cardinality;
  bool group_norm;
  std::string aa;
  std::string attn;
  int64_t attn_channels;  // the unpruned width: pruning leaves the attention layers as built
  double se_rd_ratio;
  nn::Sequential downsample{nullptr};
  double drop_path_rate = 0.0;  // stochastic depth of the residual branch
};

// Members and the shortcut/attention tail shared by both block types.
class BlockBase : public nn::Module {
 protected:
  void init_tail(const BlockArgs& a) {
    if (!a.attn.empty()) {
      se_ = layers::create_attn(a.attn, a.attn_channels, a.se_rd_ratio);
      register_module("se", se_.ptr());
    }
    if (a.downsample) downsample_ = register_module("downsample", a.downsample);
    drop_path_rate_ = a.drop_path_rate;
  }
  // Anti-aliasing replaces the strided conv when the block downsamples or changes dilation.
  bool init_aa(const BlockArgs& a, int64_t channels) {
    const bool use_aa = !a.aa.empty() && (a.stride == 2 || a.first_dilation != a.dilation);
    if (use_aa) aa_ = layers::create_aa(a.aa, channels, a.stride);
    return use_aa;
  }
  // `x` is the block's own fresh output (a norm's or the attention's), so it is updated in place as
  // timm does (x += shortcut; inplace ReLU); autograd needs neither value afterwards.
  torch::Tensor finish(torch::Tensor x, const torch::Tensor& shortcut) {
    if (!se_.is_empty()) x = se_.forward(x);
    x = layers::drop_path(x, drop_path_rate_, is_training());
    x.add_(downsample_ ? downsample_->forward(shortcut) : shortcut);
    return torch::relu_(x);
  }

  nn::AnyModule se_;
  nn::Sequential downsample_{nullptr};
  TensorFn aa_;
  double drop_path_rate_ = 0.0;
};

class BasicBlockImpl : public BlockBase {
 public:
  explicit BasicBlockImpl(const BlockArgs& a) {
    const bool use_aa = init_aa(a, a.first_planes);
    conv1_ = register_module("conv1", conv(a.inplanes, a.first_planes, 3, use_aa ? 1 : a.stride, a.first_dilation,
                                           a.first_dilation));
    bn1_ = make_norm(a.group_norm, a.first_planes);
    register_module("bn1", bn1_.ptr());
    conv2_ = register_module("conv2", conv(a.first_planes, a.outplanes, 3, 1, a.dilation, a.dilation));
    bn2_ = make_norm(a.group_norm, a.outplanes);
    register_module("bn2", bn2_.ptr());
    init_tail(a);
  }

  // In-place ReLUs act on the norms' fresh outputs (timm's inplace=True).
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = bn1_.forward(conv1_(x)).relu_();
    if (aa_) y = aa_(y);
    y = bn2_.forward(conv2_(y));
    return finish(y, x);
  }

 private:
  nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  nn::AnyModule bn1_, bn2_;
};
TORCH_MODULE(BasicBlock);

class BottleneckImpl : public BlockBase {
 public:
  explicit BottleneckImpl(const BlockArgs& a) {
    const bool use_aa = init_aa(a, a.width);
    conv1_ = register_module("conv1", conv(a.inplanes, a.first_planes, 1));
    bn1_ = make_norm(a.group_norm, a.first_planes);
    register_module("bn1", bn1_.ptr());
    conv2_ = register_module("conv2", conv(a.first_planes, a.width, 3, use_aa ? 1 : a.stride, a.first_dilation,
                                           a.first_dilation, a.cardinality));
    bn2_ = make_norm(a.group_norm, a.width);
    register_module("bn2", bn2_.ptr());
    conv3_ = register_module("conv3", conv(a.width, a.outplanes, 1));
    bn3_ = make_norm(a.group_norm, a.outplanes);
    register_module("bn3", bn3_.ptr());
    init_tail(a);
  }

  torch::Tensor forward(const torch::Tensor& x) {
    auto y = bn1_.forward(conv1_(x)).relu_();
    y = bn2_.forward(conv2_(y)).relu_();
    if (aa_) y = aa_(y);
    y = bn3_.forward(conv3_(y));
    return finish(y, x);
  }

 private:
  nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, conv3_{nullptr};
  nn::AnyModule bn1_, bn2_, bn3_;
};
TORCH_MODULE(Bottleneck);

// Builds one block of a stage from its BlockArgs: how another family's blocks (timm's sknet) go
// into timm's ResNet.
using BlockFactory = std::function<nn::AnyModule(const BlockArgs&)>;

}  // namespace smp::timm::resnet_blocks

namespace smp::timm::resnet {

// timm's ResNet (stem, stage bookkeeping, output stride, features) with blocks from `make_block`.
// `bottleneck` gives the blocks timm's Bottleneck widths and expansion (4), else BasicBlock's.
struct CustomBlockResNet {
  bool bottleneck = false;
  std::vector<int64_t> layers;
  int64_t cardinality = 1, base_width = 64;
  bool d_variant = false;  // timm's 'D': 32-wide deep stem, average-pool shortcut
  resnet_blocks::BlockFactory make_block;
  int64_t stem_width = 32;  // the deep stem's width with d_variant (64: timm's ResNeSt 'e' nets)
};

Backbone create_custom_block_resnet(const std::string& name, const CustomBlockResNet& spec, const ModelArgs& args);

}  // namespace smp::timm::resnet
