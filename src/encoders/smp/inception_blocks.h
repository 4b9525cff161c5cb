// The building blocks smp's InceptionV4 and InceptionResNetV2 encoders share (Cadene's
// pretrainedmodels ports, with smp's padding changes).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/pooling.h>

#include <string>
#include <utility>
#include <vector>

namespace smp::smp_encoders::inception_blocks {

// Conv (no bias), BatchNorm (eps 1e-3), ReLU under timm's names. smp pads every 3x3 conv by 1; the
// other kernels (1x1, 5x5, 1x7, 7x1, 1x3, 3x1) already had "same" padding, so every conv pads by half
// its kernel.
class BasicConv2dImpl : public torch::nn::Module {
 public:
  BasicConv2dImpl(int64_t in, int64_t out, int64_t kh, int64_t kw, int64_t stride = 1) {
    conv = register_module(
        "conv", torch::nn::Conv2d(
                    torch::nn::Conv2dOptions(in, out, {kh, kw}).stride(stride).padding({kh / 2, kw / 2}).bias(false)));
    bn = register_module("bn", torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(out).eps(1e-3)));
  }
  torch::Tensor forward(const torch::Tensor& x) { return torch::relu(bn(conv(x))); }

 private:
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
};
TORCH_MODULE(BasicConv2d);

inline BasicConv2d conv_bn(int64_t in, int64_t out, int64_t k, int64_t stride = 1) {
  return BasicConv2d(in, out, k, k, stride);
}

// smp gives the stride-2 max pools padding 1 as well.
inline torch::nn::MaxPool2d max_pool() {
  return torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(3).stride(2).padding(1));
}

// nn::Sequential with a plain forward, so that it can be a branch (an AnyModule).
class SeqImpl : public torch::nn::SequentialImpl {
 public:
  using torch::nn::SequentialImpl::SequentialImpl;
  torch::Tensor forward(const torch::Tensor& x) { return torch::nn::SequentialImpl::forward(x); }
};
TORCH_MODULE(Seq);

template <typename M>
torch::nn::AnyModule any(M module) {
  return torch::nn::AnyModule(std::move(module));
}

// Named branches that all read the input, concatenated along channels.
class BranchesImpl : public torch::nn::Module {
 public:
  BranchesImpl() = default;
  explicit BranchesImpl(const std::vector<std::pair<std::string, torch::nn::AnyModule>>& named) {
    for (const auto& [name, branch] : named) add(name, branch);
  }
  void add(const std::string& name, torch::nn::AnyModule branch) {
    register_module(name, branch.ptr());
    branches_.push_back(std::move(branch));
  }
  torch::Tensor concat(const torch::Tensor& x) {
    std::vector<torch::Tensor> outs;
    for (auto& b : branches_) outs.push_back(b.forward(x));
    return torch::cat(outs, 1);
  }
  torch::Tensor forward(const torch::Tensor& x) { return concat(x); }

 private:
  std::vector<torch::nn::AnyModule> branches_;
};
TORCH_MODULE(Branches);

}  // namespace smp::smp_encoders::inception_blocks
