#include "inference/onednn.h"

#include "inference/nhwc_kernels.h"

#include <ATen/ATen.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <fmt/format.h>

#include <optional>
#include <string>
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

// The post-op chain; returns whether it adds a residual. The residual is added as oneDNN's sum
// post-op: the destination holds it when the primitive starts, and the result overwrites it.
bool build_post_ops(const std::vector<PostOp>& post_ops, dnnl::primitive_attr& attr) {
  dnnl::post_ops ops;
  bool adds = false;
  for (const auto& op : post_ops) {
    if (op.kind == PostOp::Kind::kActivation) {
      append_activation(ops, op);
    } else {
      TORCH_CHECK(!adds, "oneDNN product: at most one fused residual add");
      ops.append_sum(1.f);
      adds = true;
    }
  }
  attr.set_post_ops(ops);
  return adds;
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
  bool adds_residual = false;
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

  // The output tensor: new, or with a residual add the residual itself when nothing else holds it
  // (its storage is then overwritten by the result), else a copy of it.
  at::Tensor destination(at::Tensor residual, const at::TensorOptions& options, at::MemoryFormat format) const {
    if (!adds_residual) return at::empty(output_sizes, options.memory_format(format));
    TORCH_CHECK(residual.defined() && residual.sizes() == at::IntArrayRef(output_sizes), "fused residual has shape ",
                residual.defined() ? residual.sizes() : at::IntArrayRef(), ", output ", at::IntArrayRef(output_sizes));
    if (residual.use_count() == 1 && residual.storage().use_count() == 1 && residual.scalar_type() == dtype &&
        residual.is_contiguous(format))
      return residual;
    auto out = at::empty(output_sizes, options.memory_format(format));
    out.copy_(residual);
    return out;
  }

  // src and out dense, as src_md and dst_md describe them; `weights_now` for products whose second
  // operand is an activation.
  void execute(const at::Tensor& src, const at::Tensor& out, const memory* weights_now = nullptr) const {
    auto& engine = cpu_engine();
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, memory(src_md, engine, src.data_ptr())},
                                         {DNNL_ARG_WEIGHTS, weights_now ? *weights_now : weights},
                                         {DNNL_ARG_DST, memory(dst_md, engine, out.data_ptr())}};
    if (bias.defined()) args.emplace(DNNL_ARG_BIAS, bias_memory);
    dnnl::stream stream(engine);
    primitive.execute(stream, args);
    stream.wait();
  }
};

struct FusedConv::State : Prepared {
  at::Tensor depthwise_weight;  // [kh, kw, C]: runs as depthwise_channels_last instead of `primitive`
  ConvGeometry geometry;
  std::optional<dnnl::binary> epilogue;  // bias and post-ops of a transposed convolution, in place
  at::Tensor epilogue_bias;
  memory epilogue_bias_memory;
};
struct FusedMatmul::State : Prepared {};
struct BatchedMatmul::State : Prepared {
  memory::desc b_md;
  std::vector<int64_t> b_sizes;
};

// Along each axis, output 2m reads inputs m-1 (tap 0) and m (taps 1, 2), output 2m+1 inputs m (taps
// 0, 1) and m+1 (tap 2); transposed tap k takes input m to output 2m-1+k.
at::Tensor upsampled_conv_as_transposed(const at::Tensor& weight) {
  TORCH_CHECK(weight.size(2) == 3 && weight.size(3) == 3, "upsampled-input convolution must be 3x3");
  const auto taps = at::tensor({0., 0., 1., 0., 1., 1., 1., 1., 0., 1., 0., 0.}, at::kDouble).view({4, 3});
  return at::einsum("ak,oikl,bl->oiab", {taps, weight.to(at::kDouble), taps}).to(at::kFloat);
}

FusedConv::FusedConv(const at::Tensor& weight, const at::Tensor& bias, const ConvGeometry& g,
                     at::IntArrayRef input_sizes, at::ScalarType dtype, std::vector<PostOp> post_ops)
    : state_(std::make_unique<State>()) {
  auto& s = *state_;
  s.dtype = dtype;
  s.input_sizes = input_sizes.vec();
  const int64_t n = input_sizes[0], h = input_sizes[2], w = input_sizes[3];
  const int64_t out_channels = weight.size(0), kh = weight.size(2), kw = weight.size(3);
  const bool transposed = g.transposed;
  TORCH_CHECK(!transposed || g.groups == 1, "transposed convolution: one group only");
  auto extent = [&](int64_t size, int64_t kernel, int d) {
    const int64_t window = g.dilation[d] * (kernel - 1) + 1;
    return transposed ? (size - 1) * g.stride[d] - 2 * g.padding[d] + window + g.output_padding[d]
                      : (size + 2 * g.padding[d] - window) / g.stride[d] + 1;
  };
  const int64_t oh = extent(h, kh, 0), ow = extent(w, kw, 1);
  s.output_sizes = {n, out_channels, oh, ow};

  const auto dt = dnnl_type(dtype);
  s.src_md = memory::desc({input_sizes[0], input_sizes[1], h, w}, dt, Tag::nhwc);
  s.dst_md = memory::desc({n, out_channels, oh, ow}, dt, Tag::nhwc);
  memory::dims weight_dims = {out_channels, weight.size(1), kh, kw};
  if (g.groups > 1) weight_dims = {g.groups, out_channels / g.groups, weight.size(1), kh, kw};
  const memory::desc any_weights(weight_dims, dt, Tag::any);
  const memory::desc bias_md({out_channels}, memory::data_type::f32, Tag::a);

  dnnl::primitive_attr attr;
  s.adds_residual = build_post_ops(post_ops, attr);
  auto& engine = cpu_engine();
  const auto kind = dnnl::prop_kind::forward_inference;
  if (transposed) {
    // oneDNN 2.6 applies a transposed convolution's bias and post-ops in a slow reference loop, so the
    // primitive runs bare and a channels-last binary primitive adds the bias and runs the post-ops
    // in place.
    TORCH_CHECK(!s.adds_residual, "transposed convolution cannot add a residual");
    const memory::dims strides = {g.stride[0], g.stride[1]}, dilation = {g.dilation[0] - 1, g.dilation[1] - 1},
                       padding_l = {g.padding[0], g.padding[1]},
                       padding_r = {g.padding[0] - g.output_padding[0], g.padding[1] - g.output_padding[1]};
    const dnnl::deconvolution_forward::primitive_desc pd(
        dnnl::deconvolution_forward::desc(kind, dnnl::algorithm::deconvolution_direct, s.src_md, any_weights, s.dst_md,
                                          strides, dilation, padding_l, padding_r),
        engine);
    s.primitive = dnnl::deconvolution_forward(pd);
    s.weights = pack(weight, weight_dims, pd.weights_desc(), dtype);
    s.epilogue_bias = bias.defined() ? bias.to(at::kFloat).contiguous() : at::zeros({out_channels}, at::kFloat);
    const memory::desc channel_md({1, out_channels, 1, 1}, memory::data_type::f32, Tag::nhwc);
    s.epilogue = dnnl::binary(dnnl::binary::primitive_desc(
        dnnl::binary::desc(dnnl::algorithm::binary_add, s.dst_md, channel_md, s.dst_md), attr, engine));
    s.epilogue_bias_memory = memory(channel_md, engine, s.epilogue_bias.data_ptr());
    return;
  } else {
    const memory::dims strides = {g.stride[0], g.stride[1]}, padding = {g.padding[0], g.padding[1]},
                       dilation = {g.dilation[0] - 1, g.dilation[1] - 1};
    const auto algorithm = dnnl::algorithm::convolution_direct;
    auto desc = bias.defined() ? dnnl::convolution_forward::desc(kind, algorithm, s.src_md, any_weights, bias_md,
                                                                 s.dst_md, strides, dilation, padding, padding)
                               : dnnl::convolution_forward::desc(kind, algorithm, s.src_md, any_weights, s.dst_md,
                                                                 strides, dilation, padding, padding);
    const dnnl::convolution_forward::primitive_desc pd(desc, attr, engine);
    // oneDNN 2.6 runs depthwise convolutions it has no depthwise kernel for (large dilations) as
    // dense or GEMM convolutions, 10-50x slower than a direct loop.
    const bool depthwise = g.groups > 1 && g.groups == out_channels && g.groups == input_sizes[1];
    if (depthwise && post_ops.empty() && std::string(pd.impl_info_str()).find("dw") == std::string::npos) {
      s.depthwise_weight = weight.to(at::kFloat).reshape({out_channels, kh, kw}).permute({1, 2, 0}).contiguous();
      s.geometry = g;
    } else {
      s.primitive = dnnl::convolution_forward(pd);
      s.weights = pack(weight, weight_dims, pd.weights_desc(), dtype);
    }
  }
  s.set_bias(bias, bias_md);
}

FusedConv::~FusedConv() = default;

at::Tensor FusedConv::run(const at::Tensor& x, at::Tensor residual) const {
  const auto& s = *state_;
  s.check_input(x, "convolution");
  const auto format = at::MemoryFormat::ChannelsLast;
  auto src = x.to(s.dtype).contiguous(format);
  if (s.depthwise_weight.defined()) {
    const auto& g = s.geometry;
    return depthwise_channels_last(src, s.depthwise_weight, s.bias, g.stride, g.padding, g.dilation, s.output_sizes[2],
                                   s.output_sizes[3]);
  }
  auto out = s.destination(std::move(residual), src.options(), format);
  s.execute(src, out);
  if (s.epilogue) {
    auto& engine = cpu_engine();
    const memory dst(s.dst_md, engine, out.data_ptr());
    dnnl::stream stream(engine);
    s.epilogue->execute(stream, {{DNNL_ARG_SRC_0, dst}, {DNNL_ARG_SRC_1, s.epilogue_bias_memory}, {DNNL_ARG_DST, dst}});
    stream.wait();
  }
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
  s.adds_residual = build_post_ops(post_ops, attr);
  auto& engine = cpu_engine();
  auto desc = bias.defined() ? dnnl::matmul::desc(s.src_md, any_weights, bias_md, s.dst_md)
                             : dnnl::matmul::desc(s.src_md, any_weights, s.dst_md);
  const dnnl::matmul::primitive_desc pd(desc, attr, engine);
  s.primitive = dnnl::matmul(pd);
  s.weights = pack(weight, {k, n}, pd.weights_desc(), dtype);
  s.set_bias(bias, bias_md);
}

FusedMatmul::~FusedMatmul() = default;

at::Tensor FusedMatmul::run(const at::Tensor& x, at::Tensor residual) const {
  const auto& s = *state_;
  s.check_input(x, "matmul");
  auto src = x.to(s.dtype).contiguous();
  auto out = s.destination(std::move(residual), src.options(), at::MemoryFormat::Contiguous);
  s.execute(src, out);
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
  s.adds_residual = build_post_ops(post_ops, attr);
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(s.src_md, s.b_md, s.dst_md), attr, cpu_engine());
  s.primitive = dnnl::matmul(pd);
}

BatchedMatmul::~BatchedMatmul() = default;

at::Tensor BatchedMatmul::run(const at::Tensor& a, const at::Tensor& b, at::Tensor residual) const {
  const auto& s = *state_;
  s.check_input(a, "matmul");
  TORCH_CHECK(b.sizes() == at::IntArrayRef(s.b_sizes), "compiled matmul expects a right operand ",
              at::IntArrayRef(s.b_sizes), ", got ", b.sizes());
  auto lhs = a.to(s.dtype).contiguous(), rhs = b.to(s.dtype).contiguous();
  auto out = s.destination(std::move(residual), lhs.options(), at::MemoryFormat::Contiguous);
  const memory right(s.b_md, cpu_engine(), rhs.data_ptr());
  s.execute(lhs, out, &right);
  return out;
}

struct LastDimOp::State {
  dnnl::primitive primitive;
  memory::desc md;
  std::vector<int64_t> sizes;
  at::ScalarType dtype;
  at::Tensor scale, shift;  // LayerNorm's, float32 (ones and zeros when the model has none)
  memory scale_memory, shift_memory;
};

LastDimOp::LastDimOp(std::unique_ptr<State> state) : state_(std::move(state)) {}
LastDimOp::LastDimOp(LastDimOp&&) noexcept = default;
LastDimOp::~LastDimOp() = default;

std::unique_ptr<LastDimOp::State> LastDimOp::new_state(at::IntArrayRef sizes, at::ScalarType dtype) {
  auto s = std::make_unique<LastDimOp::State>();
  s->sizes = sizes.vec();
  s->dtype = dtype;
  const int64_t c = sizes.empty() ? 1 : sizes.back();
  const int64_t rows = c == 0 ? 0 : c10::multiply_integers(sizes) / c;
  s->md = memory::desc({rows, c}, dnnl_type(dtype), Tag::ab);
  return s;
}

LastDimOp LastDimOp::layer_norm(at::IntArrayRef sizes, at::ScalarType dtype, const at::Tensor& weight,
                                const at::Tensor& bias, double eps) {
  auto s = new_state(sizes, dtype);
  const int64_t c = sizes.back();
  s->scale = weight.defined() ? weight.to(at::kFloat).contiguous() : at::ones({c}, at::kFloat);
  s->shift = bias.defined() ? bias.to(at::kFloat).contiguous() : at::zeros({c}, at::kFloat);
  const memory::desc channel_md({c}, memory::data_type::f32, Tag::a);
  auto& engine = cpu_engine();
  s->scale_memory = memory(channel_md, engine, s->scale.data_ptr());
  s->shift_memory = memory(channel_md, engine, s->shift.data_ptr());
  const dnnl::layer_normalization_forward::desc desc(dnnl::prop_kind::forward_inference, s->md, static_cast<float>(eps),
                                                     dnnl::normalization_flags::use_scale |
                                                         dnnl::normalization_flags::use_shift);
  s->primitive = dnnl::layer_normalization_forward(dnnl::layer_normalization_forward::primitive_desc(desc, engine));
  return LastDimOp(std::move(s));
}

LastDimOp LastDimOp::softmax(at::IntArrayRef sizes, at::ScalarType dtype) {
  auto s = new_state(sizes, dtype);
  const dnnl::softmax_forward::desc desc(dnnl::prop_kind::forward_inference, s->md, 1);
  s->primitive = dnnl::softmax_forward(dnnl::softmax_forward::primitive_desc(desc, cpu_engine()));
  return LastDimOp(std::move(s));
}

at::Tensor LastDimOp::run(const at::Tensor& x) const {
  const auto& s = *state_;
  TORCH_CHECK(x.sizes() == at::IntArrayRef(s.sizes), "compiled ", s.scale.defined() ? "layer_norm" : "softmax",
              " expects input ", at::IntArrayRef(s.sizes), ", got ", x.sizes());
  auto src = x.to(s.dtype).contiguous();
  auto out = at::empty_like(src, src.options().memory_format(at::MemoryFormat::Contiguous));
  if (out.numel() == 0) return out;
  auto& engine = cpu_engine();
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, memory(s.md, engine, src.data_ptr())},
                                       {DNNL_ARG_DST, memory(s.md, engine, out.data_ptr())}};
  if (s.scale.defined()) {
    args.emplace(DNNL_ARG_SCALE, s.scale_memory);
    args.emplace(DNNL_ARG_SHIFT, s.shift_memory);
  }
  dnnl::stream stream(engine);
  s.primitive.execute(stream, args);
  stream.wait();
  return out;
}

struct MaxPool::State {
  dnnl::pooling_v2_forward primitive;
  memory::desc src_md, dst_md;
  std::vector<int64_t> input_sizes, output_sizes;
  at::ScalarType dtype;
};

MaxPool::MaxPool(at::IntArrayRef input_sizes, at::IntArrayRef output_sizes, at::IntArrayRef kernel,
                 at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, at::ScalarType dtype)
    : state_(std::make_unique<State>()) {
  auto& s = *state_;
  s.input_sizes = input_sizes.vec();
  s.output_sizes = output_sizes.vec();
  s.dtype = dtype;
  const auto dt = dnnl_type(dtype);
  s.src_md = memory::desc(memory::dims(input_sizes.begin(), input_sizes.end()), dt, Tag::nhwc);
  s.dst_md = memory::desc(memory::dims(output_sizes.begin(), output_sizes.end()), dt, Tag::nhwc);
  // The right padding that gives the model's output size (more than the left one in ceil mode).
  memory::dims padding_r(2);
  for (int d = 0; d < 2; ++d) {
    const int64_t window = dilation[d] * (kernel[d] - 1) + 1;
    int64_t pad = std::max<int64_t>(0, (output_sizes[2 + d] - 1) * stride[d] + window - input_sizes[2 + d] - padding[d]);
    while ((input_sizes[2 + d] + padding[d] + pad - window) / stride[d] + 1 < output_sizes[2 + d]) ++pad;
    TORCH_CHECK((input_sizes[2 + d] + padding[d] + pad - window) / stride[d] + 1 == output_sizes[2 + d],
                "max pooling: no padding gives the output size ", output_sizes[2 + d]);
    padding_r[d] = pad;
  }
  const dnnl::pooling_v2_forward::desc desc(
      dnnl::prop_kind::forward_inference, dnnl::algorithm::pooling_max, s.src_md, s.dst_md, {stride[0], stride[1]},
      {kernel[0], kernel[1]}, {dilation[0] - 1, dilation[1] - 1}, {padding[0], padding[1]}, padding_r);
  s.primitive = dnnl::pooling_v2_forward(dnnl::pooling_v2_forward::primitive_desc(desc, cpu_engine()));
}

MaxPool::~MaxPool() = default;

at::Tensor MaxPool::run(const at::Tensor& x) const {
  const auto& s = *state_;
  TORCH_CHECK(x.sizes() == at::IntArrayRef(s.input_sizes), "compiled max pooling expects input ",
              at::IntArrayRef(s.input_sizes), ", got ", x.sizes());
  const auto format = at::MemoryFormat::ChannelsLast;
  auto src = x.to(s.dtype).contiguous(format);
  auto out = at::empty(s.output_sizes, src.options().memory_format(format));
  auto& engine = cpu_engine();
  dnnl::stream stream(engine);
  s.primitive.execute(stream, {{DNNL_ARG_SRC, memory(s.src_md, engine, src.data_ptr())},
                               {DNNL_ARG_DST, memory(s.dst_md, engine, out.data_ptr())}});
  stream.wait();
  return out;
}

}  // namespace smp::inference
