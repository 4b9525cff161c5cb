#include "inference/engine.h"

#include "inference/nhwc_kernels.h"
#include "inference/onednn.h"
#include "util/cpu_allocator.h"

#include <ATen/ATen.h>
#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/constant_propagation.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>

#include <fmt/format.h>

#include <algorithm>
#include <cfloat>
#include <chrono>
#include <cstdlib>
#include <limits>
#include <optional>
#include <unordered_map>
#include <unordered_set>

namespace smp::inference {

using c10::IValue;
using torch::jit::Graph;
using torch::jit::Node;
using torch::jit::Value;

struct Program::Step {
  std::string name;
  std::function<void(std::vector<IValue>&)> run;
  std::vector<int> reads;
  std::vector<int> release;  // slots whose last reader this step is
  // A slot the step may take its tensor from (to write its result into) when it is the last reader;
  // `last_reader` is set once the releases are planned.
  int consumes = -1;
  std::shared_ptr<bool> last_reader;
};

Program::~Program() = default;

std::string CompileStats::summary() const {
  return fmt::format(
      "{} convolutions and {} matrix products as oneDNN primitives ({} BatchNorms folded, {} activations and {} "
      "residual adds fused), {} resizings merged into the op that reads them, {} channel concatenations, {} "
      "convolutions reading their concatenated or upsampled input in parts, {} BatchNorms as affine maps, {} "
      "LayerNorms and softmaxes and {} max poolings as oneDNN primitives, {} ATen ops",
      convolutions, matmuls, folded_norms, fused_activations, fused_adds, fused_upsamplings, channel_concats,
      convolutions_in_parts, affine_norms, last_dim_ops, pools, aten_ops);
}

namespace {

c10::Symbol aten(const char* name) { return c10::Symbol::aten(name); }

std::optional<std::vector<int64_t>> static_sizes(const Value* v) {
  auto type = v->type()->cast<c10::TensorType>();
  if (!type) return std::nullopt;
  auto sizes = type->sizes().concrete_sizes();
  if (!sizes) return std::nullopt;
  return *sizes;
}

std::optional<at::ScalarType> static_dtype(const Value* v) {
  auto type = v->type()->cast<c10::TensorType>();
  if (!type || !type->scalarType()) return std::nullopt;
  return *type->scalarType();
}

bool is_float_4d(const Value* v) {
  const auto sizes = static_sizes(v);
  return sizes && sizes->size() == 4 && static_dtype(v) == at::kFloat;
}

std::optional<IValue> constant(const Value* v) {
  auto iv = torch::jit::toIValue(v);  // a c10::optional: converted by hand, IValue would swallow it as None
  if (!iv) return std::nullopt;
  return *iv;
}

std::optional<double> constant_number(const Value* v) {
  auto iv = constant(v);
  if (!iv) return std::nullopt;
  if (iv->isDouble()) return iv->toDouble();
  if (iv->isInt()) return static_cast<double>(iv->toInt());
  if (iv->isBool()) return iv->toBool() ? 1.0 : 0.0;
  return std::nullopt;
}

std::optional<at::Tensor> constant_tensor(const Value* v) {
  auto iv = constant(v);
  if (iv && iv->isTensor()) return iv->toTensor();
  return std::nullopt;
}

bool is_none(const Value* v) {
  auto iv = constant(v);
  return iv && iv->isNone();
}

std::optional<std::vector<int64_t>> constant_ints(const Value* v, size_t length) {
  auto iv = constant(v);
  if (!iv || !iv->isIntList()) return std::nullopt;
  auto list = iv->toIntVector();
  if (list.size() == 1 && length == 2) list.push_back(list[0]);
  if (list.size() != length) return std::nullopt;
  return list;
}

// Whether a user of `v` writes to it (an in-place op or an out= argument).
bool written_by_a_user(const Value* v) {
  for (const auto& use : v->uses()) {
    const auto kind = use.user->kind();
    if (kind == c10::prim::ListConstruct || kind == c10::prim::TupleConstruct || kind == c10::prim::Return) continue;
    if (!kind.is_aten()) return true;
    const auto* op = use.user->maybeOperator();
    if (!op) return true;
    const auto& args = op->schema().arguments();
    if (use.offset < args.size() && args[use.offset].alias_info() && args[use.offset].alias_info()->isWrite())
      return true;
  }
  return false;
}

// A convolution or matrix product with constant weights, and the ops after it that run as its
// post-ops (or, for a BatchNorm or a bias add, inside its weights).
struct ProductGroup {
  enum class Kind { kConv, kMatmul, kBatched };  // kBatched: both operands are activations
  Kind kind = Kind::kConv;
  Node* head = nullptr;
  at::Tensor weight, bias;
  ConvGeometry geometry;
  std::vector<PostOp> post_ops;
  Value* residual = nullptr;
  Value* output = nullptr;
  // A convolution that reads a channel concatenation (or a single nearest upsampling by 2) in place of
  // its input: one primitive per part of the concatenation, each adding into the previous one's
  // result, upsampled parts as transposed convolutions of the small tensor.
  struct InputPart {
    Value* source;
    int64_t channels;
    bool upsampled;
    int64_t first_channel;  // in the concatenation
  };
  std::vector<InputPart> input_parts;
  // Where the group runs: at its head, or at its last node when the residual is computed after the
  // head (then nothing may write to the head's input in between).
  Node* anchor = nullptr;
};

// A 2-d convolution with constant weights on a float32 4-d input.
std::optional<ProductGroup> parse_conv(Node* n) {
  ProductGroup g;
  g.head = n;
  int groups_at;
  bool transposed = false;
  if (n->kind() == aten("_convolution") && n->inputs().size() >= 9) {
    auto flag = constant(n->input(6));
    if (!flag || !flag->isBool()) return std::nullopt;
    transposed = flag->toBool();
    groups_at = 8;
  } else if (n->kind() == aten("conv2d") && n->inputs().size() == 7) {
    groups_at = 6;
  } else {
    return std::nullopt;
  }
  if (!is_float_4d(n->input(0))) return std::nullopt;
  auto weight = constant_tensor(n->input(1));
  if (!weight || weight->dim() != 4 || weight->scalar_type() != at::kFloat) return std::nullopt;
  g.weight = *weight;
  if (!is_none(n->input(2))) {
    auto bias = constant_tensor(n->input(2));
    if (!bias) return std::nullopt;
    g.bias = *bias;
  }
  auto stride = constant_ints(n->input(3), 2), padding = constant_ints(n->input(4), 2),
       dilation = constant_ints(n->input(5), 2);
  auto groups = constant(n->input(groups_at));
  if (!stride || !padding || !dilation || !groups || !groups->isInt()) return std::nullopt;
  g.geometry = {*stride, *padding, *dilation, groups->toInt()};
  if (transposed) {  // weight [I, O, kh, kw] -> [O, I, kh, kw]
    auto output_padding = constant_ints(n->input(7), 2);
    if (!output_padding || g.geometry.groups != 1) return std::nullopt;
    g.geometry.transposed = true;
    g.geometry.output_padding = *output_padding;
    g.weight = g.weight.transpose(0, 1).contiguous();
  }
  g.output = n->output();
  return g;
}

// x @ W (a linear layer as LibTorch traces it for inputs of 3 or more dimensions), linear(x, W, b) and
// addmm(b, x, W^T) with a constant weight, on a float input of at least 2 dimensions.
std::optional<ProductGroup> parse_matmul(Node* n) {
  ProductGroup g;
  g.kind = ProductGroup::Kind::kMatmul;
  g.head = n;
  Value* x = nullptr;
  if (n->kind() == aten("matmul") && n->inputs().size() == 2 && !constant(n->input(1))) {
    const auto a = static_sizes(n->input(0)), b = static_sizes(n->input(1));
    if (!a || !b || a->size() < 2 || a->size() != b->size() || static_dtype(n->input(0)) != at::kFloat ||
        static_dtype(n->input(1)) != at::kFloat || a->back() != (*b)[b->size() - 2] ||
        !std::equal(a->begin(), a->end() - 2, b->begin()))
      return std::nullopt;
    g.kind = ProductGroup::Kind::kBatched;
    g.output = n->output();
    return g;
  }
  if (n->kind() == aten("matmul") && n->inputs().size() == 2) {
    x = n->input(0);
    auto w = constant_tensor(n->input(1));
    if (!w || w->dim() != 2) return std::nullopt;
    g.weight = *w;
  } else if (n->kind() == aten("linear") && n->inputs().size() == 3) {
    x = n->input(0);
    auto w = constant_tensor(n->input(1));
    if (!w || w->dim() != 2) return std::nullopt;
    g.weight = w->t();
    if (!is_none(n->input(2))) {
      auto b = constant_tensor(n->input(2));
      if (!b) return std::nullopt;
      g.bias = *b;
    }
  } else if (n->kind() == aten("addmm") && n->inputs().size() == 5) {
    x = n->input(1);
    auto b = constant_tensor(n->input(0));
    auto w = constant_tensor(n->input(2));
    if (!b || b->dim() != 1 || !w || w->dim() != 2 || constant_number(n->input(3)) != 1.0 ||
        constant_number(n->input(4)) != 1.0)
      return std::nullopt;
    g.weight = *w;
    g.bias = *b;
  } else {
    return std::nullopt;
  }
  const auto sizes = static_sizes(x);
  if (!sizes || sizes->size() < 2 || static_dtype(x) != at::kFloat || g.weight.scalar_type() != at::kFloat ||
      sizes->back() != g.weight.size(0) || (g.bias.defined() && g.bias.numel() != g.weight.size(1)))
    return std::nullopt;
  g.output = n->output();
  return g;
}

// An elementwise activation oneDNN can run as a post-op, appended to `ops`.
bool parse_activation(const Node* n, std::vector<PostOp>& ops) {
  static const std::unordered_map<std::string, Activation> plain = {
      {"relu", Activation::kRelu},         {"silu", Activation::kSilu},       {"hardswish", Activation::kHardswish},
      {"hardsigmoid", Activation::kHardsigmoid}, {"sigmoid", Activation::kSigmoid}, {"tanh", Activation::kTanh},
      {"mish", Activation::kMish}};
  if (!n->kind().is_aten()) return false;
  std::string name = n->kind().toUnqualString();
  if (!name.empty() && name.back() == '_') name.pop_back();
  PostOp op;
  if (auto it = plain.find(name); it != plain.end() && n->inputs().size() == 1) {
    op.activation = it->second;
  } else if (name == "leaky_relu" && n->inputs().size() == 2) {
    auto slope = constant_number(n->input(1));
    if (!slope) return false;
    op.alpha = static_cast<float>(*slope);
  } else if ((name == "hardtanh" || name == "clamp") && n->inputs().size() == 3) {
    if (n->input(1)->type()->cast<c10::TensorType>() || n->input(2)->type()->cast<c10::TensorType>()) return false;
    auto lo = is_none(n->input(1)) ? std::optional<double>(-FLT_MAX) : constant_number(n->input(1));
    auto hi = is_none(n->input(2)) ? std::optional<double>(FLT_MAX) : constant_number(n->input(2));
    if (!lo || !hi) return false;
    op.activation = Activation::kClip;
    op.alpha = static_cast<float>(*lo);
    op.beta = static_cast<float>(*hi);
  } else if (name == "clamp_min" && n->inputs().size() == 2 && !n->input(1)->type()->cast<c10::TensorType>()) {
    auto lo = constant_number(n->input(1));
    if (!lo) return false;
    op.activation = Activation::kClip;
    op.alpha = static_cast<float>(*lo);
    op.beta = FLT_MAX;
  } else if (name == "gelu" && n->inputs().size() == 2) {
    auto mode = constant(n->input(1));
    if (!mode || !mode->isString()) return false;
    if (mode->toStringRef() == "none") op.activation = Activation::kGeluErf;
    else if (mode->toStringRef() == "tanh") op.activation = Activation::kGeluTanh;
    else return false;
  } else if (name == "elu" && n->inputs().size() == 4) {
    auto alpha = constant_number(n->input(1)), scale = constant_number(n->input(2)),
         input_scale = constant_number(n->input(3));
    if (!alpha || scale != 1.0 || input_scale != 1.0) return false;
    op.activation = Activation::kElu;
    op.alpha = static_cast<float>(*alpha);
  } else {
    return false;
  }
  ops.push_back(op);
  return true;
}

// BatchNorm in eval mode with constant statistics: y = x * scale + shift per channel (float64 maths).
struct Affine {
  at::Tensor scale, shift;
};
std::optional<Affine> parse_eval_batch_norm(const Node* n) {
  if (n->kind() != aten("batch_norm") || n->inputs().size() != 9) return std::nullopt;
  auto training = constant(n->input(5));
  auto mean = constant_tensor(n->input(3)), var = constant_tensor(n->input(4));
  auto eps = constant_number(n->input(7));
  if (!training || !training->isBool() || training->toBool() || !mean || !var || !eps) return std::nullopt;
  const auto channels = mean->numel();
  auto opts = at::TensorOptions().dtype(at::kDouble);
  auto weight = is_none(n->input(1)) ? std::optional<at::Tensor>(at::ones({channels}, opts)) : constant_tensor(n->input(1));
  auto bias = is_none(n->input(2)) ? std::optional<at::Tensor>(at::zeros({channels}, opts)) : constant_tensor(n->input(2));
  if (!weight || !bias) return std::nullopt;
  Affine a;
  a.scale = weight->to(at::kDouble) / (var->to(at::kDouble) + *eps).sqrt();
  a.shift = bias->to(at::kDouble) - mean->to(at::kDouble) * a.scale;
  return a;
}

// The residual of a fused add: moved out of its slot when the step is the slot's last reader, so
// that the product can write its result into it.
at::Tensor residual_operand(std::vector<IValue>& v, int slot, bool last_reader) {
  if (slot < 0) return at::Tensor();
  if (!last_reader) return v[slot].toTensor();
  auto t = std::move(v[slot]).toTensor();
  v[slot] = IValue();
  return t;
}

bool is_add(const Node* n) {
  return (n->kind() == aten("add") || n->kind() == aten("add_")) && n->inputs().size() == 3 &&
         n->input(1)->type()->cast<c10::TensorType>() && constant_number(n->input(2)) == 1.0;
}

bool defined_before(const Value* v, const Node* n) {
  return v->node()->kind() == c10::prim::Param || v->node()->kind() == c10::prim::Constant ||
         v->node()->isBefore(n);
}

// oneDNN 2.6's depthwise kernels add a binary post-op wrongly when the kernel window reaches past
// the padded input on both sides (a 7x7 kernel on a 2x2 map: FastViT's positional encoding at the
// last stage); such convolutions add their residual separately.
bool residual_fusable(const ProductGroup& g) {
  if (g.kind != ProductGroup::Kind::kConv) return true;
  if (g.geometry.transposed) return false;  // see FusedConv
  const auto in = *static_sizes(g.head->input(0));
  for (int d = 0; d < 2; ++d) {
    const int64_t window = (g.weight.size(2 + d) - 1) * g.geometry.dilation[d] + 1;
    if (window > in[2 + d] + g.geometry.padding[d]) return false;
  }
  return true;
}

// Follows the single-use chain after a convolution, taking in what oneDNN can run as part of it.
void absorb_chain(ProductGroup& g, std::unordered_set<Node*>& absorbed, CompileStats& stats) {
  const auto out_sizes = static_sizes(g.output);
  while (g.output->uses().size() == 1) {
    Node* user = g.output->uses()[0].user;
    const size_t offset = g.output->uses()[0].offset;
    if (absorbed.count(user)) break;  // another group's post-op already
    if (g.kind == ProductGroup::Kind::kMatmul && !g.bias.defined() && g.post_ops.empty() && is_add(user) &&
        (offset == 0 || user->kind() == aten("add"))) {
      auto bias = constant_tensor(user->input(offset == 0 ? 1 : 0));
      if (bias && bias->dim() == 1 && bias->numel() == g.weight.size(1) && bias->scalar_type() == at::kFloat) {
        g.bias = *bias;
        absorbed.insert(user);
        g.output = user->output();
        continue;
      }
    }
    if (g.kind == ProductGroup::Kind::kConv && offset == 0 && g.post_ops.empty()) {
      if (auto bn = parse_eval_batch_norm(user)) {
        auto scale = bn->scale;
        // One float32 product per weight (no float64 copy of the weights: compile-time memory).
        g.weight = g.weight * scale.to(at::kFloat).view({-1, 1, 1, 1});
        auto bias = g.bias.defined() ? g.bias.to(at::kDouble) : at::zeros_like(scale);
        g.bias = (bias * scale + bn->shift).to(at::kFloat);
        ++stats.folded_norms;
        absorbed.insert(user);
        g.output = user->output();
        continue;
      }
    }
    if (offset == 0 && (user->kind() == aten("mul") || user->kind() == aten("div")) && user->inputs().size() == 2) {
      auto factor = constant_number(user->input(1));
      if (!factor) {
        auto t = constant_tensor(user->input(1));
        if (t && t->dim() == 0 && t->is_floating_point()) factor = t->item<double>();
      }
      if (factor && (user->kind() == aten("mul") || *factor != 0.0)) {
        PostOp op;
        op.activation = Activation::kLinear;
        op.alpha = static_cast<float>(user->kind() == aten("mul") ? *factor : 1.0 / *factor);
        g.post_ops.push_back(op);
        ++stats.fused_activations;
        absorbed.insert(user);
        g.output = user->output();
        continue;
      }
    }
    if (offset == 0 && parse_activation(user, g.post_ops)) {
      ++stats.fused_activations;
      absorbed.insert(user);
      g.output = user->output();
      continue;
    }
    if (is_add(user) && !g.residual && (offset == 0 || user->kind() == aten("add")) && residual_fusable(g)) {
      Value* other = user->input(offset == 0 ? 1 : 0);
      Value* input = g.head->input(g.head->kind() == aten("addmm") ? 1 : 0);
      const bool now = defined_before(other, g.head), later = !written_by_a_user(input);
      if (static_sizes(other) == out_sizes && static_dtype(other) == at::kFloat && (now || later)) {
        if (!now) g.anchor = user;
        g.post_ops.push_back({PostOp::Kind::kAdd});
        g.residual = other;
        ++stats.fused_adds;
        absorbed.insert(user);
        g.output = user->output();
        continue;
      }
    }
    break;
  }
}

// F.interpolate's nearest and bilinear resizing of a float 4-d tensor, which the channel
// concatenation kernel can apply while it copies.
bool is_resize(const Node* n) {
  const auto k = n->kind();
  const size_t args = n->inputs().size();
  const bool nearest = k == aten("upsample_nearest2d") && (args == 3 || args == 4);
  const bool bilinear = k == aten("upsample_bilinear2d") && (args == 4 || args == 5);
  return (nearest || bilinear) && is_float_4d(n->input(0)) && is_float_4d(n->output());
}

// The resize a node does, with the scale factors and align_corners the model gave it.
CatPart resize_part(const Node* n) {
  CatPart part;
  const bool bilinear = n->kind() == aten("upsample_bilinear2d");
  part.mode = bilinear ? CatPart::Mode::kBilinear : CatPart::Mode::kNearest;
  if (bilinear) part.align_corners = constant(n->input(2))->toBool();
  const size_t first_scale = bilinear ? 3 : 2;
  if (n->inputs().size() == first_scale + 1) {  // .vec overload: one optional list of scale factors
    auto scales = constant(n->input(first_scale));
    if (scales && scales->isDoubleList()) {
      auto list = scales->toDoubleVector();
      part.scale_h = list.at(0);
      part.scale_w = list.at(list.size() > 1 ? 1 : 0);
    }
  } else {  // scales_h, scales_w
    part.scale_h = constant_number(n->input(first_scale));
    part.scale_w = constant_number(n->input(first_scale + 1));
  }
  return part;
}

}  // namespace

class Compiler {
 public:
  Compiler(std::shared_ptr<Graph> graph, at::ScalarType dtype) : graph_(std::move(graph)), dtype_(dtype) {}

  std::shared_ptr<const Program> build(const at::Tensor& example) {
    std::shared_ptr<Program> p(new Program());
    program_ = p.get();
    p->dtype_ = dtype_;
    p->input_sizes_ = example.sizes().vec();
    analyse();
    p->input_slot_ = slot(graph_->inputs()[0]);
    for (Node* n : graph_->nodes()) emit(n);
    for (Value* out : graph_->outputs()) p->output_slots_.push_back(slot(out));
    plan_releases();
    p->stats_ = stats_;
    return p;
  }

 private:
  struct CatGroup {
    std::vector<Value*> sources;
    std::vector<CatPart> parts;  // sources' upsampling (no tensor yet)
  };
  struct AffineGroup {
    at::Tensor scale, shift;
    bool relu = false;
    Value* output;
  };

  void analyse() {
    for (Node* n : graph_->nodes()) {
      if (absorbed_.count(n)) continue;
      auto product = parse_conv(n);
      if (!product) product = parse_matmul(n);
      if (product) {
        product->anchor = n;
        absorb_chain(*product, absorbed_, stats_);
        anchors_.emplace(product->anchor, n);
        products_.emplace(n, std::move(*product));
      } else if (n->kind() == aten("cat")) {
        analyse_cat(n);
      }
    }
    for (Node* n : graph_->nodes()) {
      if (absorbed_.count(n) || products_.count(n) || cats_.count(n)) continue;
      if (analyse_stacked_sum(n)) continue;
      if (is_resize(n)) {
        CatGroup g;
        g.sources.push_back(n->input(0));
        g.parts.push_back(resize_part(n));
        cats_.emplace(n, std::move(g));
      } else if (auto bn = parse_eval_batch_norm(n); bn && is_float_4d(n->input(0))) {
        AffineGroup g{bn->scale.to(at::kFloat), bn->shift.to(at::kFloat), false, n->output()};
        if (n->output()->uses().size() == 1) {
          Node* user = n->output()->uses()[0].user;
          if ((user->kind() == aten("relu") || user->kind() == aten("relu_")) && user->inputs().size() == 1) {
            g.relu = true;
            g.output = user->output();
            absorbed_.insert(user);
          }
        }
        affines_.emplace(n, std::move(g));
      }
    }
    for (auto& [head, g] : products_) read_input_in_parts(g);
  }

  // A 3x3 convolution over a concatenation that has nearest-upsampled-by-2 parts (Unet-style decoder
  // blocks), or over one such upsampling: the concatenation and the upsampled copies are never made.
  void read_input_in_parts(ProductGroup& g) {
    const auto& geo = g.geometry;
    if (g.kind != ProductGroup::Kind::kConv || g.residual || geo.transposed || g.weight.size(2) != 3 || g.weight.size(3) != 3 ||
        geo.stride != std::vector<int64_t>{1, 1} || geo.padding != std::vector<int64_t>{1, 1} ||
        geo.dilation != std::vector<int64_t>{1, 1} || geo.groups != 1 || g.head->input(0)->uses().size() != 1)
      return;
    Node* producer = g.head->input(0)->node();
    auto it = cats_.find(producer);
    if (it == cats_.end()) return;
    const auto out = *static_sizes(g.head->input(0));
    int64_t channel = 0;
    std::vector<ProductGroup::InputPart> parts;
    for (size_t i = 0; i < it->second.sources.size(); ++i) {
      Value* source = it->second.sources[i];
      const auto in = static_sizes(source);
      if (!in || it->second.parts[i].mode != CatPart::Mode::kNearest) return;
      const bool same = (*in)[2] == out[2] && (*in)[3] == out[3];
      const bool upsampled = 2 * (*in)[2] == out[2] && 2 * (*in)[3] == out[3];
      if (!same && !upsampled) return;
      if ((*in)[1] == 0) continue;  // an encoder's empty (dummy) feature
      parts.push_back({source, (*in)[1], upsampled, channel});
      channel += (*in)[1];
    }
    // The transposed convolution runs first (it cannot add into an earlier part's result).
    auto upsampled_parts = std::count_if(parts.begin(), parts.end(), [](const auto& p) { return p.upsampled; });
    if (upsampled_parts != 1) return;
    std::stable_partition(parts.begin(), parts.end(), [](const auto& p) { return p.upsampled; });
    g.input_parts = std::move(parts);
    ++stats_.convolutions_in_parts;
    if (is_resize(producer)) ++stats_.fused_upsamplings;
    cats_.erase(it);
    absorbed_.insert(producer);
  }

  // stack(list, 0).sum(0) over same-shaped float tensors -> one elementwise pass.
  bool analyse_stacked_sum(Node* n) {
    if (n->kind() != aten("sum") || n->inputs().size() != 4 || n->input(0)->uses().size() != 1) return false;
    Node* stack = n->input(0)->node();
    auto dims = constant(n->input(1));
    auto keepdim = constant(n->input(2));
    if (stack->kind() != aten("stack") || constant_number(stack->input(1)) != 0.0 || !dims || !dims->isIntList() ||
        dims->toIntVector() != std::vector<int64_t>{0} || !keepdim || !keepdim->isBool() || keepdim->toBool() ||
        !is_none(n->input(3)))
      return false;
    Node* list = stack->input(0)->node();
    if (list->kind() != c10::prim::ListConstruct || stack->input(0)->uses().size() != 1) return false;
    for (Value* item : list->inputs())
      if (static_sizes(item) != static_sizes(list->input(0)) || static_dtype(item) != at::kFloat) return false;
    absorbed_.insert(list);
    absorbed_.insert(stack);
    sums_.emplace(n, list);
    return true;
  }

  // cat(list of 4-d float tensors, dim 1) -> the channels-last kernel, nearest upsamplings taken in.
  void analyse_cat(Node* n) {
    auto dim = constant(n->input(1));
    Node* list = n->input(0)->node();
    if (!dim || !dim->isInt() || list->kind() != c10::prim::ListConstruct || n->input(0)->uses().size() != 1 ||
        !is_float_4d(n->output()))
      return;
    if (dim->toInt() != 1 && dim->toInt() != -3) return;
    CatGroup g;
    for (Value* item : list->inputs()) {
      if (!is_float_4d(item)) return;
      Node* producer = item->node();
      if (is_resize(producer) && item->uses().size() == 1 && !absorbed_.count(producer)) {
        g.sources.push_back(producer->input(0));
        g.parts.push_back(resize_part(producer));
      } else {
        g.sources.push_back(item);
        g.parts.emplace_back();
      }
    }
    for (Value* item : list->inputs())
      if (is_resize(item->node()) && item->uses().size() == 1) {
        absorbed_.insert(item->node());
        ++stats_.fused_upsamplings;
      }
    absorbed_.insert(list);
    cats_.emplace(n, std::move(g));
  }

  int slot(Value* v) {
    if (auto it = slots_.find(v); it != slots_.end()) return it->second;
    const int s = static_cast<int>(program_->initial_.size());
    slots_.emplace(v, s);
    IValue init;
    if (v->node()->kind() == c10::prim::Constant) {
      init = *constant(v);
      if (dtype_ != at::kFloat && init.isTensor() && init.toTensor().scalar_type() == at::kFloat)
        init = init.toTensor().to(dtype_);
      program_->constant_slots_.insert(s);
    }
    program_->initial_.push_back(std::move(init));
    return s;
  }

  // `consumes`: a slot whose tensor the step may take over when it is that slot's last reader
  // (`last_reader` is set then, once the releases are planned).
  void add_step(std::string name, std::function<void(std::vector<IValue>&)> run, std::vector<int> reads,
                int consumes = -1, std::shared_ptr<bool> last_reader = nullptr) {
    program_->steps_.push_back({std::move(name), std::move(run), std::move(reads), {}, consumes, std::move(last_reader)});
  }

  void emit(Node* n) {
    if (auto it = anchors_.find(n); it != anchors_.end()) {
      auto& group = products_.at(it->second);
      emit_product(group);
      group.weight = group.bias = at::Tensor();  // packed now; the folded copy is not needed
      return;
    }
    if (absorbed_.count(n) || n->kind() == c10::prim::Constant) return;
    if (products_.count(n)) return;  // runs at its anchor
    if (auto it = cats_.find(n); it != cats_.end()) return emit_cat(n, it->second);
    if (auto it = affines_.find(n); it != affines_.end()) return emit_affine(n, it->second);
    if (auto it = sums_.find(n); it != sums_.end()) return emit_sum(n, it->second);
    if (n->kind() == aten("view") && n->inputs().size() == 2) return emit_reshape(n);
    if (emit_last_dim_op(n) || emit_max_pool(n)) return;
    if (emit_container(n)) return;
    emit_aten(n);
  }

  void emit_product(const ProductGroup& g) {
    Value* input = g.head->input(g.head->kind() == aten("addmm") ? 1 : 0);
    const int x = slot(input), residual = g.residual ? slot(g.residual) : -1, out = slot(g.output);
    auto reads = residual >= 0 ? std::vector<int>{x, residual} : std::vector<int>{x};
    const auto sizes = *static_sizes(input);
    auto last_reader = std::make_shared<bool>(false);
    auto take_residual = [residual, last_reader](std::vector<IValue>& v) {
      return residual_operand(v, residual, *last_reader);
    };
    if (g.kind == ProductGroup::Kind::kBatched) {
      const int y = slot(g.head->input(1));
      reads.push_back(y);
      auto mm = std::make_shared<BatchedMatmul>(sizes, *static_sizes(g.head->input(1)), dtype_, g.post_ops);
      add_step("matmul (activations)",
               [mm, x, y, out, take_residual](std::vector<IValue>& v) {
                 auto a = v[x].toTensor(), b = v[y].toTensor();
                 v[out] = mm->run(a, b, take_residual(v));
               },
               reads, residual, last_reader);
      ++stats_.matmuls;
    } else if (g.kind == ProductGroup::Kind::kConv && !g.input_parts.empty()) {
      emit_conv_in_parts(g);
      return;
    } else if (g.kind == ProductGroup::Kind::kConv) {
      add_conv_step(fmt::format("conv{} {}x{} {}->{}", g.geometry.transposed ? " transposed" : "", g.weight.size(2),
                                g.weight.size(3), g.weight.size(1), g.weight.size(0)),
                    std::make_shared<FusedConv>(g.weight, g.bias, g.geometry, sizes, dtype_, g.post_ops), x, residual,
                    out);
      ++stats_.convolutions;
    } else {
      auto mm = std::make_shared<FusedMatmul>(g.weight, g.bias, sizes, dtype_, g.post_ops);
      add_step(fmt::format("matmul {}->{}", g.weight.size(0), g.weight.size(1)),
               [mm, x, out, take_residual](std::vector<IValue>& v) {
                 auto a = v[x].toTensor();
                 v[out] = mm->run(a, take_residual(v));
               },
               reads, residual, last_reader);
      ++stats_.matmuls;
    }
  }

  // One convolution per input part, each adding its result into the previous part's (which it
  // consumes); the bias and the group's post-ops go with the last.
  void emit_conv_in_parts(const ProductGroup& g) {
    int previous = -1;
    for (size_t i = 0; i < g.input_parts.size(); ++i) {
      const auto& part = g.input_parts[i];
      const bool last = i + 1 == g.input_parts.size();
      auto geometry = g.geometry;
      at::Tensor weight = g.weight.narrow(1, part.first_channel, part.channels);
      if (part.upsampled) {
        weight = upsampled_conv_as_transposed(weight);
        geometry = {{2, 2}, {1, 1}, {1, 1}, 1, true, {0, 0}};
      }
      std::vector<PostOp> post_ops;
      if (previous >= 0) post_ops.push_back({PostOp::Kind::kAdd});
      if (last) post_ops.insert(post_ops.end(), g.post_ops.begin(), g.post_ops.end());
      const int out = last ? slot(g.output) : temporary_slot();
      add_conv_step(fmt::format("conv 3x3 {}->{}{}", part.channels, weight.size(0), part.upsampled ? " (upsampled input)" : ""),
                    std::make_shared<FusedConv>(weight.contiguous(), last ? g.bias : at::Tensor(), geometry,
                                                *static_sizes(part.source), dtype_, post_ops),
                    slot(part.source), previous, out);
      previous = out;
    }
    ++stats_.convolutions;
  }

  // A convolution step reading slot x (and the residual slot, which it takes over when it is its last reader).
  void add_conv_step(std::string name, std::shared_ptr<FusedConv> conv, int x, int residual, int out) {
    auto last_reader = std::make_shared<bool>(false);
    add_step(std::move(name),
             [conv, x, out, residual, last_reader](std::vector<IValue>& v) {
               auto a = v[x].toTensor();
               v[out] = conv->run(a, residual_operand(v, residual, *last_reader));
             },
             residual >= 0 ? std::vector<int>{x, residual} : std::vector<int>{x}, residual, last_reader);
  }

  int temporary_slot() {
    program_->initial_.emplace_back();
    return static_cast<int>(program_->initial_.size()) - 1;
  }

  void emit_cat(Node* n, const CatGroup& g) {
    std::vector<int> sources;
    for (Value* v : g.sources) sources.push_back(slot(v));
    const auto sizes = *static_sizes(n->output());
    const int out = slot(n->output());
    const int64_t h = sizes[2], w = sizes[3];
    auto parts = g.parts;
    add_step(n->kind() == aten("cat") ? "cat" : n->kind().toUnqualString(),
        [sources, parts, out, h, w](std::vector<IValue>& v) mutable {
          for (size_t i = 0; i < sources.size(); ++i) parts[i].source = v[sources[i]].toTensor();
          v[out] = cat_channels_last(parts, h, w);
          for (auto& p : parts) p.source = at::Tensor();
        },
        sources);
    if (n->kind() == aten("cat")) ++stats_.channel_concats;
  }

  void emit_affine(Node* n, const AffineGroup& g) {
    const int x = slot(n->input(0)), out = slot(g.output);
    add_step("affine", [g, x, out](std::vector<IValue>& v) { v[out] = affine_channels_last(v[x].toTensor(), g.scale, g.shift, g.relu); },
             {x});
    ++stats_.affine_norms;
  }

  void emit_sum(Node* n, Node* list) {
    std::vector<int> in;
    for (Value* v : list->inputs()) in.push_back(slot(v));
    const int out = slot(n->output());
    add_step("sum",
             [in, out](std::vector<IValue>& v) {
               std::vector<at::Tensor> xs;
               for (int i : in) xs.push_back(v[i].toTensor());
               v[out] = sum_tensors(xs);
             },
             in);
  }

  // layer_norm over the last dimension with constant affine parameters, and softmax over the last
  // dimension, on float tensors: oneDNN primitives.
  bool emit_last_dim_op(Node* n) {
    const auto sizes = static_sizes(n->input(0));
    if (!sizes || sizes->empty() || static_dtype(n->input(0)) != at::kFloat) return false;
    std::shared_ptr<LastDimOp> op;
    if (n->kind() == aten("layer_norm") && n->inputs().size() == 6) {
      auto shape = constant(n->input(1));
      auto eps = constant_number(n->input(4));
      std::optional<at::Tensor> weight, bias;
      if (!is_none(n->input(2)) && !(weight = constant_tensor(n->input(2)))) return false;
      if (!is_none(n->input(3)) && !(bias = constant_tensor(n->input(3)))) return false;
      if (!shape || !shape->isIntList() || shape->toIntVector() != std::vector<int64_t>{sizes->back()} || !eps)
        return false;
      op = std::make_shared<LastDimOp>(LastDimOp::layer_norm(*sizes, dtype_, weight.value_or(at::Tensor()),
                                                             bias.value_or(at::Tensor()), *eps));
    } else if (n->kind() == aten("softmax") && n->inputs().size() == 3 && is_none(n->input(2))) {
      auto dim = constant(n->input(1));
      const auto rank = static_cast<int64_t>(sizes->size());
      if (!dim || !dim->isInt() || (dim->toInt() != -1 && dim->toInt() != rank - 1)) return false;
      op = std::make_shared<LastDimOp>(LastDimOp::softmax(*sizes, dtype_));
    } else {
      return false;
    }
    const int x = slot(n->input(0)), out = slot(n->output());
    add_step(n->kind().toUnqualString(), [op, x, out](std::vector<IValue>& v) { v[out] = op->run(v[x].toTensor()); },
             {x});
    ++stats_.last_dim_ops;
    return true;
  }

  bool emit_max_pool(Node* n) {
    if (n->kind() != aten("max_pool2d") || n->inputs().size() != 6 || !is_float_4d(n->input(0))) return false;
    auto kernel = constant_ints(n->input(1), 2), padding = constant_ints(n->input(3), 2),
         dilation = constant_ints(n->input(4), 2);
    const auto given_stride = constant(n->input(2));
    if (!given_stride || !given_stride->isIntList()) return false;
    auto stride = given_stride->toIntVector().empty() ? kernel : constant_ints(n->input(2), 2);  // []: the kernel
    const auto in = static_sizes(n->input(0)), out = static_sizes(n->output());
    if (!kernel || !stride || !padding || !dilation || !in || !out) return false;
    auto pool = std::make_shared<MaxPool>(*in, *out, *kernel, *stride, *padding, *dilation, dtype_);
    const int x = slot(n->input(0)), y = slot(n->output());
    add_step("max_pool2d", [pool, x, y](std::vector<IValue>& v) { v[y] = pool->run(v[x].toTensor()); }, {x});
    ++stats_.pools;
    return true;
  }

  // view() needs strides the channels-last activations may not have; reshape copies only then.
  void emit_reshape(Node* n) {
    const int x = slot(n->input(0)), shape = slot(n->input(1)), out = slot(n->output());
    add_step("reshape", [x, shape, out](std::vector<IValue>& v) { v[out] = v[x].toTensor().reshape(v[shape].toIntVector()); },
             {x, shape});
    ++stats_.aten_ops;
  }

  // The list and tuple nodes the interpreter builds in itself (no registered operator runs them).
  bool emit_container(Node* n) {
    const auto k = n->kind();
    if (k != c10::prim::ListConstruct && k != c10::prim::TupleConstruct && k != c10::prim::ListUnpack &&
        k != c10::prim::TupleUnpack)
      return false;
    std::vector<int> in, out;
    for (Value* v : n->inputs()) in.push_back(slot(v));
    for (Value* v : n->outputs()) out.push_back(slot(v));
    std::function<void(std::vector<IValue>&)> run;
    if (k == c10::prim::ListConstruct) {
      const auto element = n->output()->type()->expectRef<c10::ListType>().getElementType();
      run = [in, out, element](std::vector<IValue>& v) {
        if (element->kind() == c10::TypeKind::TensorType) {
          c10::List<at::Tensor> list;
          for (int i : in) list.push_back(v[i].toTensor());
          v[out[0]] = std::move(list);
        } else if (element->kind() == c10::TypeKind::IntType) {
          c10::List<int64_t> list;
          for (int i : in) list.push_back(v[i].toInt());
          v[out[0]] = std::move(list);
        } else if (element->kind() == c10::TypeKind::FloatType) {
          c10::List<double> list;
          for (int i : in) list.push_back(v[i].toDouble());
          v[out[0]] = std::move(list);
        } else {
          c10::impl::GenericList list(element);
          for (int i : in) list.push_back(v[i]);
          v[out[0]] = std::move(list);
        }
      };
    } else if (k == c10::prim::TupleConstruct) {
      run = [in, out](std::vector<IValue>& v) {
        std::vector<IValue> items;
        for (int i : in) items.push_back(v[i]);
        v[out[0]] = c10::ivalue::Tuple::create(std::move(items));
      };
    } else {
      const bool tuple = k == c10::prim::TupleUnpack;
      run = [in, out, tuple](std::vector<IValue>& v) {
        const auto items = tuple ? v[in[0]].toTupleRef().elements().vec() : v[in[0]].toListRef().vec();
        TORCH_CHECK(items.size() == out.size(), "unpacking ", items.size(), " values into ", out.size());
        for (size_t j = 0; j < out.size(); ++j) v[out[j]] = items[j];
      };
    }
    add_step(k.toQualString(), std::move(run), in);
    return true;
  }

  void emit_aten(Node* n) {
    std::vector<int> in, out;
    for (Value* v : n->inputs()) in.push_back(slot(v));
    for (Value* v : n->outputs()) out.push_back(slot(v));
    torch::jit::Operation op(nullptr);
    try {
      op = n->getOperation();
    } catch (const std::exception&) {
      throw std::runtime_error(fmt::format("inference compiler: no kernel for traced op {}", n->kind().toQualString()));
    }
    const bool low_precision = dtype_ != at::kFloat;
    // Reductions and normalizations keep float32 statistics in a bfloat16 program (LibTorch 1.13's
    // bfloat16 GroupNorm, for one, accumulates in bfloat16): their inputs go up, their outputs down.
    const bool in_float32 = low_precision && accumulates(n->kind());
    const auto dtype = dtype_;
    add_step(n->kind().toQualString(),
        [op, in, out, low_precision, in_float32, dtype](std::vector<IValue>& v) mutable {
          torch::jit::Stack stack;
          stack.reserve(std::max(in.size(), out.size()));
          for (int i : in) stack.push_back(v[i]);
          if (low_precision)
            for (auto& item : stack) cast_tensors(item, in_float32 ? dtype : at::kFloat, in_float32 ? at::kFloat : dtype);
          op(stack);
          if (in_float32)
            for (size_t k = 0; k < out.size(); ++k) cast_tensors(stack[k], at::kFloat, dtype);
          for (size_t k = 0; k < out.size(); ++k) v[out[k]] = std::move(stack[k]);
        },
        in);
    ++stats_.aten_ops;
  }

  static bool accumulates(c10::Symbol kind) {
    static const std::unordered_set<std::string> names = {
        "group_norm", "layer_norm", "instance_norm", "batch_norm", "softmax", "log_softmax", "mean", "sum", "var",
        "std", "var_mean", "std_mean", "norm", "linalg_vector_norm", "adaptive_avg_pool2d", "avg_pool2d", "logsumexp",
        "cumsum"};
    return kind.is_aten() && names.count(kind.toUnqualString());
  }

  // Tensors (and lists of them) of dtype `from` are cast to `to`: in a bfloat16 program float32
  // ones go down before an op, and up for the ops that accumulate.
  static void cast_tensors(IValue& item, at::ScalarType from, at::ScalarType to) {
    if (item.isTensor()) {
      if (item.toTensor().scalar_type() == from) item = item.toTensor().to(to);
    } else if (item.isTensorList()) {
      auto list = item.toTensorVector();
      bool any = false;
      for (auto& t : list)
        if (t.defined() && t.scalar_type() == from) {
          t = t.to(to);
          any = true;
        }
      if (any) item = c10::List<at::Tensor>(list);
    }
  }

  void plan_releases() {
    auto& steps = program_->steps_;
    std::unordered_map<int, size_t> last;
    for (size_t i = 0; i < steps.size(); ++i)
      for (int s : steps[i].reads) last[s] = i;
    std::unordered_set<int> keep(program_->output_slots_.begin(), program_->output_slots_.end());
    for (const auto& [s, i] : last)
      if (!keep.count(s) && !program_->constant_slots_.count(s)) {
        steps[i].release.push_back(s);
        if (steps[i].consumes == s) *steps[i].last_reader = true;
      }
  }

  std::shared_ptr<Graph> graph_;
  at::ScalarType dtype_;
  Program* program_ = nullptr;
  CompileStats stats_;
  std::unordered_set<Node*> absorbed_;
  std::unordered_map<Node*, ProductGroup> products_;
  std::unordered_map<Node*, Node*> anchors_;  // where a product group runs -> its head
  std::unordered_map<Node*, CatGroup> cats_;
  std::unordered_map<Node*, AffineGroup> affines_;
  std::unordered_map<Node*, Node*> sums_;  // sum node -> the list it adds up
  std::unordered_map<Value*, int> slots_;
};

namespace {

std::shared_ptr<Graph> trace(const TracedFunction& fn, const at::Tensor& example) {
  auto traced = [&fn](torch::jit::Stack inputs) {
    torch::jit::Stack outputs;
    for (auto& t : fn(inputs.at(0).toTensor())) outputs.emplace_back(std::move(t));
    return outputs;
  };
  auto [state, outputs] = torch::jit::tracer::trace({example}, traced, [](const at::Tensor&) { return std::string(); },
                                                    /*strict=*/true, /*force_outplace=*/false);
  return state->graph;
}

// Nodes that return their input unchanged in eval mode, or only change its strides, are bypassed
// (a strided copy is not taken out when something later writes to it in place).
void bypass_identities(Graph& graph) {
  for (auto it = graph.nodes().begin(); it != graph.nodes().end();) {
    Node* n = *it++;
    bool identity = false;
    if (n->kind() == aten("contiguous") && n->inputs().size() == 2) {
      identity = !written_by_a_user(n->output());
    } else if ((n->kind() == aten("dropout") || n->kind() == aten("feature_dropout") ||
                n->kind() == aten("alpha_dropout") || n->kind() == aten("feature_alpha_dropout")) &&
               n->inputs().size() == 3) {
      auto train = constant(n->input(2));
      identity = train && train->isBool() && !train->toBool() && !written_by_a_user(n->output());
    }
    if (identity) {
      n->output()->replaceAllUsesWith(n->input(0));
      n->destroy();
    }
  }
}

// mul(upsample_nearest(x), s) with s one value per channel -> upsample_nearest(mul(x, s)): the same
// numbers (nearest resizing only copies), the product on the small tensor, and the resize can then
// be merged into whatever reads it (MAnet's attention-gated decoder inputs).
void scale_before_nearest_upsampling(Graph& graph) {
  for (auto it = graph.nodes().begin(); it != graph.nodes().end();) {
    Node* n = *it++;
    if (n->kind() != aten("mul") || n->inputs().size() != 2) continue;
    for (int side = 0; side < 2; ++side) {
      Node* up = n->input(side)->node();
      Value* scale = n->input(1 - side);
      if (up->kind() != aten("upsample_nearest2d") || !is_float_4d(up->input(0))) continue;
      const auto x = *static_sizes(up->input(0));
      const auto s = static_sizes(scale);
      if (!s || s->size() != 4 || static_dtype(scale) != at::kFloat || (*s)[2] != 1 || (*s)[3] != 1 ||
          ((*s)[0] != 1 && (*s)[0] != x[0]) || ((*s)[1] != 1 && (*s)[1] != x[1]) ||
          static_sizes(n->output()) != static_sizes(up->output()))
        continue;
      torch::jit::WithInsertPoint guard(n);
      Node* product = graph.insertNode(graph.create(aten("mul"), {up->input(0), scale}));
      product->output()->setType(up->input(0)->type());
      Node* resize = graph.insertNode(
          graph.createClone(up, [&](Value* v) { return v == up->input(0) ? product->output() : v; }));
      resize->output()->setType(n->output()->type());
      n->output()->replaceAllUsesWith(resize->output());
      n->destroy();
      break;
    }
  }
}

}  // namespace

std::vector<at::Tensor> Program::run(const at::Tensor& x) const {
  TORCH_CHECK(x.sizes() == at::IntArrayRef(input_sizes_), "this program was compiled for input ",
              at::IntArrayRef(input_sizes_), ", got ", x.sizes());
  std::vector<IValue> values = initial_;
  auto input = x.to(dtype_);
  if (input.dim() == 4) input = input.contiguous(at::MemoryFormat::ChannelsLast);
  values[input_slot_] = input;
  static const bool profile = std::getenv("SMP_INFERENCE_PROFILE") != nullptr;
  for (const auto& step : steps_) {
    const auto start = profile ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
    for (int r : step.reads)
      TORCH_CHECK(!values[r].isNone() || constant_slots_.count(r), "inference program: step '", step.name,
                  "' reads a value no earlier step computed");
    step.run(values);
    for (int s : step.release) values[s] = IValue();
    if (profile)
      fmt::print(stderr, "{:8.3f} ms  {}\n",
                 std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count(), step.name);
  }
  std::vector<at::Tensor> outputs;
  for (int s : output_slots_) outputs.push_back(values[s].toTensor().to(at::kFloat).contiguous());
  return outputs;
}

std::shared_ptr<const Program> compile(const TracedFunction& fn, const at::Tensor& example, at::ScalarType dtype) {
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kBFloat16, "inference dtype must be float32 or bfloat16");
  auto graph = trace(fn, example);
  detail::trim_cpu_allocator();  // the eager pass's blocks; the program's sizes differ
  torch::jit::EliminateDeadCode(graph);
  bypass_identities(*graph);
  scale_before_nearest_upsampling(*graph);
  torch::jit::ConstantPropagation(graph);
  torch::jit::EliminateDeadCode(graph);
  if (std::getenv("SMP_INFERENCE_GRAPH")) graph->dump();
  auto program = Compiler(graph, dtype).build(example);
  detail::trim_cpu_allocator();
  return program;
}

}  // namespace smp::inference
