#include "inference/model_cache.h"

#include "inference/compiled_module.h"
#include "util/cpu_allocator.h"
#include "util/log.h"

#include <smp/inference.h>

#include <ATen/autocast_mode.h>
#include <fmt/format.h>
#include <oneapi/dnnl/dnnl.hpp>

namespace smp {

torch::Dtype parse_inference_dtype(const std::string& name) {
  if (name == "float32" || name == "fp32") return torch::kFloat32;
  if (name == "bfloat16" || name == "bf16") return torch::kBFloat16;
  throw std::invalid_argument(fmt::format("unknown inference dtype '{}': use float32 or bfloat16", name));
}

bool cpu_supports_bfloat16() {
  const auto isa = static_cast<int>(dnnl::get_effective_cpu_isa());
  const auto bf16 = static_cast<int>(dnnl::cpu_isa::avx512_core_bf16);
  return (isa & bf16) == bf16;
}

namespace inference {

namespace {

void check_options(const InferenceOptions& options) {
  if (options.dtype() != torch::kFloat32 && options.dtype() != torch::kBFloat16)
    throw std::invalid_argument(fmt::format("inference dtype must be float32 or bfloat16, got {}",
                                            c10::toString(options.dtype())));
  if (options.max_cached_shapes() < 1)
    throw std::invalid_argument(
        fmt::format("max_cached_shapes must be at least 1, got {}", options.max_cached_shapes()));
}

}  // namespace

ModelCache::ModelCache(SegmentationModelImpl& model, const InferenceOptions& options)
    : model_(model), options_(options) {
  check_options(options);
  detail::ensure_cpu_allocator();
  compiled_ = std::make_unique<CompiledModule>(
      model,
      [&model](const at::Tensor& x) {
        auto out = model.forward_all(x);
        std::vector<at::Tensor> outputs{out.mask};
        if (out.label.defined()) outputs.push_back(out.label);
        return outputs;
      },
      options.dtype(), static_cast<size_t>(options.max_cached_shapes()));
}

ModelCache::~ModelCache() = default;

SegmentationOutput ModelCache::eager(const torch::Tensor& x) {
  const bool was_training = model_.is_training();
  model_.eval();
  auto out = model_.forward_all(x);
  model_.train(was_training);
  return out;
}

SegmentationOutput ModelCache::run(const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  if (!options_.optimize()) return eager(x);
  if (!x.is_cpu()) {
    // Other devices: their own kernels, in channels-last with autocast for bfloat16.
    at::autocast::set_enabled(options_.dtype() != torch::kFloat32);
    at::autocast::set_autocast_gpu_dtype(options_.dtype());
    auto out = eager(x.contiguous(at::MemoryFormat::ChannelsLast));
    at::autocast::set_enabled(false);
    at::autocast::clear_cache();
    out.mask = out.mask.to(torch::kFloat32).contiguous();
    if (out.label.defined()) out.label = out.label.to(torch::kFloat32);
    return out;
  }
  if (options_.dtype() == torch::kBFloat16 && !cpu_supports_bfloat16())
    throw std::invalid_argument(
        "bfloat16 inference needs a CPU with AVX-512 BF16 or AMX, which this one lacks; use dtype float32");
  if (!eager_because_.empty()) return eager(x);
  model_.check_input_shape(x);  // the eager model's own message, before tracing would hit it
  std::vector<at::Tensor> outputs;
  try {
    outputs = compiled_->run(x);
  } catch (const std::invalid_argument&) {
    throw;
  } catch (const std::exception& e) {
    eager_because_ = e.what();
    log::logger().warn("the inference compiler could not take this {} ({}); running it eagerly", model_.arch(),
                       eager_because_.substr(0, eager_because_.find('\n')));
    return eager(x);
  }
  SegmentationOutput out;
  out.mask = outputs.at(0);
  if (outputs.size() > 1) out.label = outputs[1];
  return out;
}

std::string ModelCache::describe(const torch::Tensor& x) {
  if (!options_.optimize()) return "eager (optimize=false)";
  if (!eager_because_.empty()) return "eager: " + eager_because_;
  return compiled_->program_for(x)->stats().summary();
}

}  // namespace inference

InferenceModelImpl::InferenceModelImpl(SegmentationModel model, InferenceOptions options)
    : model_(std::move(model)), options_(options) {
  if (!model_) throw std::invalid_argument("optimize_for_inference: the model is null");
  cache_ = std::make_unique<inference::ModelCache>(*model_, options_);
}

InferenceModelImpl::~InferenceModelImpl() = default;

SegmentationOutput InferenceModelImpl::forward_all(const torch::Tensor& x) { return cache_->run(x); }

std::string InferenceModelImpl::describe(const torch::Tensor& x) { return cache_->describe(x); }

InferenceModel optimize_for_inference(SegmentationModel model, const InferenceOptions& options) {
  if (options.dtype() == torch::kBFloat16 && !cpu_supports_bfloat16())
    throw std::invalid_argument(
        "bfloat16 inference needs a CPU with AVX-512 BF16 or AMX, which this one lacks; use dtype float32");
  return InferenceModel(std::make_shared<InferenceModelImpl>(std::move(model), options));
}

}  // namespace smp
