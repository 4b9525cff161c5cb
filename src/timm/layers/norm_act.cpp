#include "timm/layers/norm_act.h"

namespace smp::timm::layers {

namespace nn = torch::nn;

BatchNormAct2dImpl::BatchNormAct2dImpl(int64_t channels, const std::string& act, double eps, double momentum)
    : eps_(eps), momentum_(momentum), act_(get_act(act)) {
  weight = register_parameter("weight", torch::ones({channels}));
  bias = register_parameter("bias", torch::zeros({channels}));
  running_mean = register_buffer("running_mean", torch::zeros({channels}));
  running_var = register_buffer("running_var", torch::ones({channels}));
  num_batches_tracked = register_buffer("num_batches_tracked", torch::zeros({}, torch::kLong));
}

torch::Tensor BatchNormAct2dImpl::forward(const torch::Tensor& x) {
  if (is_training()) num_batches_tracked += 1;
  return act_(torch::batch_norm(x, weight, bias, running_mean, running_var, is_training(), momentum_, eps_,
                                at::globalContext().userEnabledCuDNN()));
}

GroupNormActImpl::GroupNormActImpl(int64_t num_groups, int64_t channels, const std::string& act, double eps)
    : num_groups_(num_groups), eps_(eps), act_(get_act(act)) {
  weight = register_parameter("weight", torch::ones({channels}));
  bias = register_parameter("bias", torch::zeros({channels}));
}

torch::Tensor GroupNormActImpl::forward(const torch::Tensor& x) {
  return act_(torch::group_norm(x, num_groups_, weight, bias, eps_));
}

nn::AnyModule create_norm_act(int64_t channels, const std::string& act, int64_t group_size) {
  if (group_size <= 0) return nn::AnyModule(BatchNormAct2d(channels, act));
  if (channels % group_size != 0)
    throw std::invalid_argument("GroupNorm group size " + std::to_string(group_size) + " does not divide " +
                                std::to_string(channels) + " channels");
  return nn::AnyModule(GroupNormAct(channels / group_size, channels, act));
}

}  // namespace smp::timm::layers
