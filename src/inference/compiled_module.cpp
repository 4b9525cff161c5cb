#include "inference/compiled_module.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <torch/csrc/autograd/grad_mode.h>

namespace smp::inference {

CompiledModule::CompiledModule(torch::nn::Module& module, TracedFunction fn, at::ScalarType dtype, size_t capacity)
    : module_(module), fn_(std::move(fn)), dtype_(dtype), capacity_(std::max<size_t>(capacity, 1)) {}

std::vector<std::pair<const void*, uint32_t>> CompiledModule::fingerprint() const {
  std::vector<std::pair<const void*, uint32_t>> f;
  auto add = [&f](const at::Tensor& t) {
    f.emplace_back(t.unsafeGetTensorImpl(), t.is_inference() ? 0u : t._version());
    f.emplace_back(t.has_storage() ? t.storage().data() : nullptr, 0u);
  };
  for (const auto& p : module_.parameters()) add(p);
  for (const auto& b : module_.buffers()) add(b);
  return f;
}

std::shared_ptr<const Program> CompiledModule::program_for(const at::Tensor& x) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto now = fingerprint();
  if (now != fingerprint_) {
    programs_.clear();
    fingerprint_ = std::move(now);
  }
  for (auto it = programs_.begin(); it != programs_.end(); ++it)
    if ((*it)->input_sizes() == x.sizes().vec()) {
      programs_.splice(programs_.begin(), programs_, it);
      return programs_.front();
    }

  // Trace on an ordinary tensor (x may be an inference tensor), in eval mode, with no parameter
  // requiring grad (the tracer records parameters as constants), and restore all of it after.
  c10::InferenceMode not_inference(false);
  torch::NoGradGuard no_grad;
  const auto example = x.clone();
  std::vector<std::pair<std::shared_ptr<torch::nn::Module>, bool>> modes;
  for (const auto& m : module_.modules(/*include_self=*/false)) modes.emplace_back(m, m->is_training());
  const bool was_training = module_.is_training();
  std::vector<at::Tensor> requiring;
  for (auto& p : module_.parameters())
    if (p.requires_grad()) {
      requiring.push_back(p);
      p.requires_grad_(false);
    }
  module_.eval();
  auto restore = [&] {
    for (auto& p : requiring) p.requires_grad_(true);
    module_.train(was_training);
    for (auto& [m, training] : modes) m->train(training);
  };
  std::shared_ptr<const Program> program;
  try {
    program = compile(fn_, example, dtype_);
  } catch (...) {
    restore();
    throw;
  }
  restore();
  programs_.push_front(program);
  if (programs_.size() > capacity_) programs_.pop_back();
  return program;
}

std::vector<at::Tensor> CompiledModule::run(const at::Tensor& x) { return program_for(x)->run(x); }

}  // namespace smp::inference
