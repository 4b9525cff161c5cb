// Convolutions and matrix products with constant weights as oneDNN primitives: weights packed once
// into the layout the kernel wants, and the ops that follow (elementwise activations, a residual add)
// applied as post-ops while the output is still in registers. Convolutions take and give
// channels-last activations.
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>
#include <vector>

namespace smp::inference {

enum class Activation {
  kRelu, kClip, kSilu, kGeluErf, kGeluTanh, kHardswish, kHardsigmoid, kSigmoid, kTanh, kElu, kMish,
  kLinear  // alpha * x + beta (a constant scale or shift)
};

// What runs after the product, in order: an activation (kRelu: alpha = negative slope; kClip:
// [alpha, beta]; kElu: alpha; kLinear: alpha x + beta) or the addition of a tensor of the output's shape.
struct PostOp {
  enum class Kind { kActivation, kAdd };
  Kind kind = Kind::kActivation;
  Activation activation = Activation::kRelu;
  float alpha = 0.f, beta = 0.f;
};

struct ConvGeometry {
  std::vector<int64_t> stride, padding, dilation;  // two each
  int64_t groups = 1;
  // A transposed convolution (one group); its weight is given as [O, I, kh, kw] like a direct one's.
  bool transposed = false;
  std::vector<int64_t> output_padding = {0, 0};
};

// The 4x4 stride-2 padding-1 transposed convolution's weight [O, I, 4, 4] that computes what the 3x3
// convolution `weight` (stride 1, padding 1) computes over the nearest-upsampled-by-2 input: 16
// instead of 36 products per input pixel, and no upsampled copy.
at::Tensor upsampled_conv_as_transposed(const at::Tensor& weight);

class FusedConv {
 public:
  // weight [O, I/groups, kh, kw] and bias [O] (or undefined) in float32; input_sizes [N, I, H, W];
  // a transposed convolution adds no residual;
  // dtype kFloat or kBFloat16 for activations and weights (bias and accumulation stay float32).
  FusedConv(const at::Tensor& weight, const at::Tensor& bias, const ConvGeometry& geometry,
            at::IntArrayRef input_sizes, at::ScalarType dtype, std::vector<PostOp> post_ops);
  ~FusedConv();
  // x [N, I, H, W] (converted to channels-last `dtype` when it is not), `residual` the tensor of the
  // kAdd post-op (output shape) or undefined; when `residual` is its storage's only holder, the result
  // is written into it. Returns [N, O, OH, OW], channels-last.
  at::Tensor run(const at::Tensor& x, at::Tensor residual) const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// x [..., K] @ weight [K, N] (+ bias [N]) with post-ops, as the traced linear layers compute it.
class FusedMatmul {
 public:
  // weight [K, N] (any strides) and bias [N] (or undefined) in float32; input_sizes [..., K].
  FusedMatmul(const at::Tensor& weight, const at::Tensor& bias, at::IntArrayRef input_sizes, at::ScalarType dtype,
              std::vector<PostOp> post_ops);
  ~FusedMatmul();
  // x [..., K]; `residual` [..., N] for a kAdd post-op. Returns [..., N], contiguous.
  at::Tensor run(const at::Tensor& x, at::Tensor residual) const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// a [..., M, K] @ b [..., K, N] for two activations with equal batch dimensions (attention's
// products), with post-ops.
class BatchedMatmul {
 public:
  BatchedMatmul(at::IntArrayRef a_sizes, at::IntArrayRef b_sizes, at::ScalarType dtype, std::vector<PostOp> post_ops);
  ~BatchedMatmul();
  at::Tensor run(const at::Tensor& a, const at::Tensor& b, at::Tensor residual) const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// LayerNorm and softmax over the last dimension of a dense tensor of fixed sizes, as oneDNN
// primitives (LibTorch 1.13's bfloat16 LayerNorm on CPU is ~10x slower than float32).
class LastDimOp {
 public:
  // LayerNorm: weight and bias [C] float32 or undefined.
  static LastDimOp layer_norm(at::IntArrayRef sizes, at::ScalarType dtype, const at::Tensor& weight,
                              const at::Tensor& bias, double eps);
  static LastDimOp softmax(at::IntArrayRef sizes, at::ScalarType dtype);
  ~LastDimOp();
  LastDimOp(LastDimOp&&) noexcept;
  // x of the compiled sizes (converted to `dtype`, made contiguous); returns a new contiguous tensor.
  at::Tensor run(const at::Tensor& x) const;

 private:
  struct State;
  explicit LastDimOp(std::unique_ptr<State> state);
  static std::unique_ptr<State> new_state(at::IntArrayRef sizes, at::ScalarType dtype);
  std::unique_ptr<State> state_;
};

// 2-d max pooling of channels-last activations as a oneDNN primitive (LibTorch's is ~6x slower).
class MaxPool {
 public:
  // kernel, stride, padding, dilation two each; output_sizes as the model's op gives them (its
  // ceil_mode decides the right padding).
  MaxPool(at::IntArrayRef input_sizes, at::IntArrayRef output_sizes, at::IntArrayRef kernel, at::IntArrayRef stride,
          at::IntArrayRef padding, at::IntArrayRef dilation, at::ScalarType dtype);
  ~MaxPool();
  at::Tensor run(const at::Tensor& x) const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace smp::inference
