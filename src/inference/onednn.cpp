#include "inference/onednn.h"

#include <ATen/ATen.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <fmt/format.h>

#include <unordered_map>

namespace smp::inference {

using dnnl::memory;
using Tag = memory::format_tag;

namespace {

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

memory::data_type dnnl_type(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return memory::data_type::f32;
    case at::kBFloat16: return memory::data_type::bf16;
    default: throw std::invalid_argument(fmt::format("oneDNN convolution: unsupported dtype {}", c10::toString(t)));
  }
}

void append_activation(dnnl::post_ops& ops, const PostOp& op) {
  using A = dnnl::algorithm;
  switch (op.activation) {
    case Activation::kRelu: ops.append_eltwise(1.f, A::eltwise_relu, op.alpha, 0.f); break;
    case Activation::kClip: ops.append_eltwise(1.f, A::eltwise_clip, op.alpha, op.beta); break;
    case Activation::kSilu: ops.append_eltwise(1.f, A::eltwise_swish, 1.f, 0.f); break;
    case Activation::kGeluErf: ops.append_eltwise(1.f, A::eltwise_gelu_erf, 0.f, 0.f); break;
    case Activation::kGeluTanh: ops.append_eltwise(1.f, A::eltwise_gelu_tanh, 0.f, 0.f); break;
    case Activation::kHardswish: ops.append_eltwise(1.f, A::eltwise_hardswish, 0.f, 0.f); break;
    case Activation::kHardsigmoid:  // relu6(x + 3) / 6 = clip(x / 6 + 1/2, 0, 1)
      ops.append_eltwise(1.f, A::eltwise_linear, 1.f / 6.f, 0.5f);
      ops.append_eltwise(1.f, A::eltwise_clip, 0.f, 1.f);
      break;
    case Activation::kSigmoid: ops.append_eltwise(1.f, A::eltwise_logistic, 0.f, 0.f); break;
    case Activation::kTanh: ops.append_eltwise(1.f, A::eltwise_tanh, 0.f, 0.f); break;
    case Activation::kElu: ops.append_eltwise(1.f, A::eltwise_elu, op.alpha, 0.f); break;
    case Activation::kMish: ops.append_eltwise(1.f, A::eltwise_mish, 0.f, 0.f); break;
    case Activation::kLinear: ops.append_eltwise(1.f, A::eltwise_linear, op.alpha, op.beta); break;
  }
}

// The post-op chain; returns the execution argument of the residual (-1 without one).
int build_post_ops(const std::vector<PostOp>& post_ops, const memory::desc& residual_md, dnnl::primitive_attr& attr) {
  dnnl::post_ops ops;
  int residual_arg = -1;
  for (const auto& op : post_ops) {
    if (op.kind == PostOp::Kind::kActivation) {
      append_activation(ops, op);
    } else {
      residual_arg = DNNL_ARG_ATTR_MULTIPLE_POST_OP(ops.len()) | DNNL_ARG_SRC_1;
      ops.append_binary(dnnl::algorithm::binary_add, residual_md);
    }
  }
  attr.set_post_ops(ops);
  return residual_arg;
}

// Packs `weight` (dims `dims`, its own strides) into the layout `packed` describes.
memory pack(const at::Tensor& weight, const memory::dims& dims, const memory::desc& packed, at::ScalarType dtype) {
  auto& engine = cpu_engine();
  auto plain = weight.to(dtype);
  memory::dims strides(plain.strides().begin(), plain.strides().end());
  if (static_cast<int64_t>(dims.size()) != plain.dim()) {  // grouped convolution weights: dims split O
    plain = plain.contiguous();
    strides.clear();
  }
  memory user = strides.empty() ? memory({dims, dnnl_type(dtype), dims.size() == 5 ? Tag::goihw : Tag::oihw}, engine,
                                         plain.data_ptr())
                                : memory(memory::desc(dims, dnnl_type(dtype), strides), engine, plain.data_ptr());
  memory out(packed, engine);
  dnnl::stream stream(engine);
  dnnl::reorder(user, out).execute(stream, user, out);
  stream.wait();
  return out;
}

}  // namespace

// What the three primitives share: the primitive, its packed weights and bias, the layouts of its
// source and destination, and how to run it on dense tensors.
struct Prepared {
  dnnl::primitive primitive;
  memory weights;
  at::Tensor bias;  // float32; owns the data `bias_memory` points at
  memory bias_memory;
  memory::desc src_md, dst_md;
  int residual_arg = -1;  // DNNL_ARG_ATTR_MULTIPLE_POST_OP(i) | DNNL_ARG_SRC_1 of the add, or -1
  std::vector<int64_t> input_sizes, output_sizes;
  at::ScalarType dtype = at::kFloat;

  void set_bias(const at::Tensor& b, const memory::desc& md) {
    if (!b.defined()) return;
    bias = b.to(at::kFloat).contiguous();
    bias_memory = memory(md, cpu_engine(), bias.data_ptr());
  }

  void check_input(const at::Tensor& x, const char* what) const {
    TORCH_CHECK(x.sizes() == at::IntArrayRef(input_sizes), "compiled ", what, " expects input ",
                at::IntArrayRef(input_sizes), ", got ", x.sizes());
  }

  // src and out dense in `format`, as src_md and dst_md describe them; `weights_now` for products
  // whose second operand is an activation.
  void execute(const at::Tensor& src, const at::Tensor& out, const at::Tensor& residual, at::MemoryFormat format,
               const memory* weights_now = nullptr) const {
    auto& engine = cpu_engine();
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, memory(src_md, engine, src.data_ptr())},
                                         {DNNL_ARG_WEIGHTS, weights_now ? *weights_now : weights},
                                         {DNNL_ARG_DST, memory(dst_md, engine, out.data_ptr())}};
    if (bias.defined()) args.emplace(DNNL_ARG_BIAS, bias_memory);
    at::Tensor added;
    if (residual_arg >= 0) {
      added = residual.to(dtype).contiguous(format);
      TORCH_CHECK(added.sizes() == out.sizes(), "fused residual has shape ", added.sizes(), ", output ", out.sizes());
      args.emplace(residual_arg, memory(dst_md, engine, added.data_ptr()));
    }
    dnnl::stream stream(engine);
    primitive.execute(stream, args);
    stream.wait();
  }
};

struct FusedConv::State : Prepared {};
struct FusedMatmul::State : Prepared {};
struct BatchedMatmul::State : Prepared {
  memory::desc b_md;
  std::vector<int64_t> b_sizes;
};

FusedConv::FusedConv(const at::Tensor& weight, const at::Tensor& bias, const ConvGeometry& g,
                     at::IntArrayRef input_sizes, at::ScalarType dtype, std::vector<PostOp> post_ops)
    : state_(std::make_unique<State>()) {
  auto& s = *state_;
  s.dtype = dtype;
  s.input_sizes = input_sizes.vec();
  const int64_t n = input_sizes[0], h = input_sizes[2], w = input_sizes[3];
  const int64_t out_channels = weight.size(0), kh = weight.size(2), kw = weight.size(3);
  const int64_t oh = (h + 2 * g.padding[0] - g.dilation[0] * (kh - 1) - 1) / g.stride[0] + 1;
  const int64_t ow = (w + 2 * g.padding[1] - g.dilation[1] * (kw - 1) - 1) / g.stride[1] + 1;
  s.output_sizes = {n, out_channels, oh, ow};

  const auto dt = dnnl_type(dtype);
  s.src_md = memory::desc({input_sizes[0], input_sizes[1], h, w}, dt, Tag::nhwc);
  s.dst_md = memory::desc({n, out_channels, oh, ow}, dt, Tag::nhwc);
  memory::dims weight_dims = {out_channels, weight.size(1), kh, kw};
  if (g.groups > 1) weight_dims = {g.groups, out_channels / g.groups, weight.size(1), kh, kw};
  const memory::desc any_weights(weight_dims, dt, Tag::any);
  const memory::desc bias_md({out_channels}, memory::data_type::f32, Tag::a);

  dnnl::primitive_attr attr;
  s.residual_arg = build_post_ops(post_ops, s.dst_md, attr);
  const memory::dims strides = {g.stride[0], g.stride[1]}, padding = {g.padding[0], g.padding[1]},
                     dilation = {g.dilation[0] - 1, g.dilation[1] - 1};
  auto& engine = cpu_engine();
  auto desc = bias.defined()
                  ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                                                    dnnl::algorithm::convolution_direct, s.src_md, any_weights,
                                                    bias_md, s.dst_md, strides, dilation, padding, padding)
                  : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                                                    dnnl::algorithm::convolution_direct, s.src_md, any_weights,
                                                    s.dst_md, strides, dilation, padding, padding);
  const dnnl::convolution_forward::primitive_desc pd(desc, attr, engine);
  s.primitive = dnnl::convolution_forward(pd);

  s.weights = pack(weight, weight_dims, pd.weights_desc(), dtype);
  s.set_bias(bias, bias_md);
}

FusedConv::~FusedConv() = default;

at::Tensor FusedConv::run(const at::Tensor& x, const at::Tensor& residual) const {
  const auto& s = *state_;
  s.check_input(x, "convolution");
  const auto format = at::MemoryFormat::ChannelsLast;
  auto src = x.to(s.dtype).contiguous(format);
  auto out = at::empty(s.output_sizes, src.options().memory_format(format));
  s.execute(src, out, residual, format);
  return out;
}

FusedMatmul::FusedMatmul(const at::Tensor& weight, const at::Tensor& bias, at::IntArrayRef input_sizes,
                         at::ScalarType dtype, std::vector<PostOp> post_ops)
    : state_(std::make_unique<State>()) {
  auto& s = *state_;
  s.dtype = dtype;
  s.input_sizes = input_sizes.vec();
  const int64_t k = weight.size(0), n = weight.size(1);
  TORCH_CHECK(input_sizes.back() == k, "matmul: input has ", input_sizes.back(), " features, weight ", k);
  int64_t m = 1;
  for (size_t i = 0; i + 1 < input_sizes.size(); ++i) m *= input_sizes[i];
  s.output_sizes = s.input_sizes;
  s.output_sizes.back() = n;
  const auto dt = dnnl_type(dtype);
  s.src_md = memory::desc({m, k}, dt, Tag::ab);
  s.dst_md = memory::desc({m, n}, dt, Tag::ab);
  const memory::desc any_weights({k, n}, dt, Tag::any), bias_md({1, n}, memory::data_type::f32, Tag::ab);
  dnnl::primitive_attr attr;
  s.residual_arg = build_post_ops(post_ops, s.dst_md, attr);
  auto& engine = cpu_engine();
  auto desc = bias.defined() ? dnnl::matmul::desc(s.src_md, any_weights, bias_md, s.dst_md)
                             : dnnl::matmul::desc(s.src_md, any_weights, s.dst_md);
  const dnnl::matmul::primitive_desc pd(desc, attr, engine);
  s.primitive = dnnl::matmul(pd);
  s.weights = pack(weight, {k, n}, pd.weights_desc(), dtype);
  s.set_bias(bias, bias_md);
}

FusedMatmul::~FusedMatmul() = default;

at::Tensor FusedMatmul::run(const at::Tensor& x, const at::Tensor& residual) const {
  const auto& s = *state_;
  s.check_input(x, "matmul");
  auto src = x.to(s.dtype).contiguous();
  auto out = at::empty(s.output_sizes, src.options());
  s.execute(src, out, residual, at::MemoryFormat::Contiguous);
  return out;
}

namespace {
memory::desc plain_md(const std::vector<int64_t>& sizes, memory::data_type dt) {
  memory::dims strides(sizes.size(), 1);
  for (int i = static_cast<int>(sizes.size()) - 2; i >= 0; --i) strides[i] = strides[i + 1] * sizes[i + 1];
  return memory::desc(memory::dims(sizes.begin(), sizes.end()), dt, strides);
}
}  // namespace

BatchedMatmul::BatchedMatmul(at::IntArrayRef a_sizes, at::IntArrayRef b_sizes, at::ScalarType dtype,
                             std::vector<PostOp> post_ops)
    : state_(std::make_unique<State>()) {
  auto& s = *state_;
  s.dtype = dtype;
  s.input_sizes = a_sizes.vec();
  s.b_sizes = b_sizes.vec();
  s.output_sizes = s.input_sizes;
  s.output_sizes.back() = b_sizes.back();
  const auto dt = dnnl_type(dtype);
  s.src_md = plain_md(s.input_sizes, dt);
  s.b_md = plain_md(s.b_sizes, dt);
  s.dst_md = plain_md(s.output_sizes, dt);
  dnnl::primitive_attr attr;
  s.residual_arg = build_post_ops(post_ops, s.dst_md, attr);
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(s.src_md, s.b_md, s.dst_md), attr, cpu_engine());
  s.primitive = dnnl::matmul(pd);
}

BatchedMatmul::~BatchedMatmul() = default;

at::Tensor BatchedMatmul::run(const at::Tensor& a, const at::Tensor& b, const at::Tensor& residual) const {
  const auto& s = *state_;
  s.check_input(a, "matmul");
  TORCH_CHECK(b.sizes() == at::IntArrayRef(s.b_sizes), "compiled matmul expects a right operand ",
              at::IntArrayRef(s.b_sizes), ", got ", b.sizes());
  auto lhs = a.to(s.dtype).contiguous(), rhs = b.to(s.dtype).contiguous();
  auto out = at::empty(s.output_sizes, lhs.options());
  const memory right(s.b_md, cpu_engine(), rhs.data_ptr());
  s.execute(lhs, out, residual, at::MemoryFormat::Contiguous, &right);
  return out;
}

}  // namespace smp::inference
