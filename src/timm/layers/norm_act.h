// timm's fused norm + activation layers. They keep the plain norm's parameter names ("weight",
// "bias", "running_mean", ...), so checkpoints see a BatchNorm2d / GroupNorm.
#pragma once

#include <torch/torch.h>

#include <string>

#include "timm/layers/activations.h"

namespace smp::timm::layers {

// Its own module rather than a BatchNorm2dImpl subclass: LibTorch does not export the base's
// pretty_print, which a subclass's vtable needs.
class BatchNormAct2dImpl : public torch::nn::Module {
 public:
  // `act` by timm's name; "" for none.
  BatchNormAct2dImpl(int64_t channels, const std::string& act, double eps = 1e-5, double momentum = 0.1);
  torch::Tensor forward(const torch::Tensor& x);
  double eps() const { return eps_; }
  torch::Tensor weight, bias, running_mean, running_var, num_batches_tracked;

 private:
  double eps_, momentum_;
  ActFn act_;
};
TORCH_MODULE(BatchNormAct2d);

class GroupNormActImpl : public torch::nn::Module {
 public:
  GroupNormActImpl(int64_t num_groups, int64_t channels, const std::string& act, double eps = 1e-5);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;

 private:
  int64_t num_groups_;
  double eps_;
  ActFn act_;
};
TORCH_MODULE(GroupNormAct);

// BatchNormAct2d, or GroupNormAct with channels / group_size groups when group_size > 0.
torch::nn::AnyModule create_norm_act(int64_t channels, const std::string& act, int64_t group_size = 0);

}  // namespace smp::timm::layers
