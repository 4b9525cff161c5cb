// smp's building blocks shared by the decoders and heads.
#pragma once

#include <torch/torch.h>

#include <map>
#include <optional>
#include <string>

namespace smp {

// decoder_use_norm: true = "batchnorm", false = "identity", or a type name ("batchnorm", "identity",
// "layernorm", "instancenorm") with optional keyword parameters (eps, momentum, affine, ...).
struct NormSpec {
  NormSpec() = default;
  NormSpec(bool use) : type(use ? "batchnorm" : "identity") {}      // NOLINT
  NormSpec(const char* type) : type(type) {}                        // NOLINT
  NormSpec(std::string type) : type(std::move(type)) {}             // NOLINT
  std::string type = "batchnorm";
  std::map<std::string, double> params;
};

// aux_params: the classification head on the deepest encoder feature.
struct AuxParams {
  TORCH_ARG(int64_t, classes) = 1;
  TORCH_ARG(std::string, pooling) = "avg";  // "avg" or "max"
  TORCH_ARG(double, dropout) = 0.2;
  TORCH_ARG(std::string, activation) = "";  // "" = none (logits)
};

// A parameter-free module applying one of smp's activations by name: "" / "identity", "sigmoid",
// "softmax", "softmax2d", "logsoftmax", "tanh", "argmax", "argmax2d", "clamp".
torch::nn::Functional make_activation(const std::string& name);

// A normalisation layer (or Identity) for `channels` features.
torch::nn::AnyModule make_norm(const NormSpec& spec, int64_t channels);
bool is_identity_norm(const NormSpec& spec);

// A Sequential with a plain Tensor -> Tensor forward, so it can nest inside other Sequentials.
class BlockImpl : public torch::nn::SequentialImpl {
 public:
  using SequentialImpl::SequentialImpl;
  torch::Tensor forward(torch::Tensor x) { return SequentialImpl::forward(std::move(x)); }
};
TORCH_MODULE(Block);

// Conv2d -> norm -> ReLU (children 0, 1, 2). The conv has a bias only without norm.
Block conv2d_relu(int64_t in, int64_t out, int64_t kernel, int64_t padding, int64_t stride, const NormSpec& norm);

// Depthwise conv (no bias) -> 1x1 pointwise conv (children 0, 1).
Block separable_conv2d(int64_t in, int64_t out, int64_t kernel, int64_t padding, int64_t dilation, bool bias);

// F.interpolate options for a decoder_interpolation name ("nearest", "bilinear", "bicubic", "area",
// "nearest-exact"). align_corners is set for bilinear and bicubic only: PyTorch refuses it for the others.
torch::nn::functional::InterpolateFuncOptions interpolation(const std::string& mode, bool align_corners = false);

// F.interpolate(x, size=(height, width)) with the mode (and align_corners) of `mode`.
torch::Tensor resize(const torch::Tensor& x, int64_t height, int64_t width,
                     torch::nn::functional::InterpolateFuncOptions mode);

// PyTorch's check on a dropout probability, as std::invalid_argument naming the option.
void check_dropout(const std::string& option, double p);

// Concurrent spatial and channel squeeze & excitation.
class SCSEModuleImpl : public torch::nn::Module {
 public:
  explicit SCSEModuleImpl(int64_t in_channels, int64_t reduction = 16);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Sequential cSE{nullptr}, sSE{nullptr};
};
TORCH_MODULE(SCSEModule);

// smp's Attention wrapper: registers the attention (if any) under "attention".
class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(const std::string& name, int64_t in_channels);  // name: "" (none) or "scse"
  torch::Tensor forward(const torch::Tensor& x);

 private:
  SCSEModule scse_{nullptr};
};
TORCH_MODULE(Attention);

// Conv (kernel, padding kernel/2) -> optional bilinear upsampling -> activation.
torch::nn::Sequential segmentation_head(int64_t in_channels, int64_t classes, int64_t kernel_size,
                                        const std::string& activation, double upsampling = 1.0);
// Pool -> flatten -> dropout -> linear -> activation.
torch::nn::Sequential classification_head(int64_t in_channels, const AuxParams& aux);

}  // namespace smp
