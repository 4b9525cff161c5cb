// Re-parameterisable blocks (timm's MobileOneBlock in byobnet.py and fastvit.py): parallel conv-BN
// branches that fold into one convolution with a bias ("reparam_conv") for inference, keeping the
// outputs. smp::timm::reparameterize() finds every block implementing Reparameterizable.
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>

#include "timm/layers/activations.h"
#include "timm/layers/conv_norm_act.h"
#include "timm/layers/norm_act.h"

namespace smp::timm::layers {

// A block whose training-time branches fold into fewer modules with the same outputs.
class Reparameterizable {
 public:
  virtual ~Reparameterizable() = default;
  // Folds the block in place; false when it was folded already.
  virtual bool reparameterize() = 0;
};

// BatchNorm folded into the preceding linear map: (kernel * gamma / std, beta - mean * gamma / std).
std::pair<torch::Tensor, torch::Tensor> fuse_bn(const torch::Tensor& kernel, const BatchNormAct2dImpl& bn);
// The (conv weight, bias) of a ConvNormAct without activation as one biased convolution.
std::pair<torch::Tensor, torch::Tensor> fuse_conv_bn(ConvNormActImpl& conv_bn);
// The weight of a grouped convolution computing the identity: 1 at the centre tap of each channel.
torch::Tensor identity_kernel(int64_t channels, int64_t groups, int64_t kernel_h, int64_t kernel_w,
                              const torch::TensorOptions& options);

// The folded convolution ("reparam_conv"): the given weight and bias, stride and groups, padding
// that keeps a stride-1 output size, on the weight's device and dtype.
torch::nn::Conv2d folded_conv(const torch::Tensor& weight, const torch::Tensor& bias, int64_t stride, int64_t groups);

struct MobileOneBlockOptions {
  MobileOneBlockOptions(int64_t in_channels, int64_t out_channels, int64_t kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}
  TORCH_ARG(int64_t, in_channels);
  TORCH_ARG(int64_t, out_channels);
  TORCH_ARG(int64_t, kernel_size);
  TORCH_ARG(int64_t, stride) = 1;
  TORCH_ARG(int64_t, groups) = 1;
  TORCH_ARG(int64_t, num_conv_branches) = 1;  // parallel kxk conv-BN branches ("conv_kxk.<i>")
  TORCH_ARG(bool, scale_branch) = true;       // a 1x1 conv-BN branch ("conv_scale") when kernel_size > 1
  TORCH_ARG(std::string, act) = "relu";       // timm's name; "" = none
  // Name of the channel attention applied before the activation: byobnet says "attn", fastvit "se".
  TORCH_ARG(std::string, attn_name) = "attn";
  // byobnet's (first, rest) dilation pair in a dilated stage. As in timm, the branches themselves stay
  // undilated; a pair that differs only drops the identity branch.
  TORCH_ARG(bool, dilation_changes) = false;
  // Stochastic depth of the conv and scale branches' sum, in training and only in a block with an
  // identity branch. timm gives it to byobnet's MobileOne blocks, not to FastViT's.
  TORCH_ARG(double, drop_path_rate) = 0.0;
};

// The sum of the conv branches, the scale branch and a BatchNorm identity branch (when the shape is
// kept), then optional channel attention and the activation.
class MobileOneBlockImpl : public torch::nn::Module, public Reparameterizable {
 public:
  explicit MobileOneBlockImpl(const MobileOneBlockOptions& options, torch::nn::AnyModule attn = {});
  torch::Tensor forward(const torch::Tensor& x);
  // The one kxk convolution (weight, bias) equal to the branches (the folded one once folded).
  std::pair<torch::Tensor, torch::Tensor> kernel_bias();
  bool reparameterize() override;

 private:
  MobileOneBlockOptions options_;
  BatchNormAct2d identity_{nullptr};
  torch::nn::ModuleList conv_kxk_{nullptr};
  ConvNormAct conv_scale_{nullptr};
  torch::nn::AnyModule attn_;
  torch::nn::Conv2d reparam_conv_{nullptr};
  ActFn act_;
};
TORCH_MODULE(MobileOneBlock);

}  // namespace smp::timm::layers
