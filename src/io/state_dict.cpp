#include <smp/io.h>

#include <sstream>

#include "util/strings.h"

namespace smp::io {

namespace {
std::string shape_str(at::IntArrayRef s) {
  std::ostringstream o;
  o << s;
  return o.str();
}
}  // namespace

TensorMap state_dict(const torch::nn::Module& module) {
  TensorMap out;
  for (const auto& p : module.named_parameters()) out.emplace(p.key(), p.value());
  for (const auto& b : module.named_buffers()) out.emplace(b.key(), b.value());
  return out;
}

std::string LoadReport::describe() const {
  std::ostringstream o;
  auto section = [&o](const char* title, const std::vector<std::string>& keys) {
    if (keys.empty()) return;
    o << "\n  " << title << " (" << keys.size() << "):";
    for (const auto& k : keys) o << "\n    " << k;
  };
  section("missing keys (in the model, not in the checkpoint)", missing);
  section("unexpected keys (in the checkpoint, not in the model)", unexpected);
  section("shape mismatches", mismatched);
  return o.str();
}

torch::Tensor adapt_input_conv(const torch::Tensor& weight, int64_t in_chans) {
  if (weight.dim() != 4) throw std::invalid_argument("adapt_input_conv expects a 4-d conv weight");
  const auto dtype = weight.scalar_type();
  auto w = weight.to(torch::kFloat32);
  const int64_t src = w.size(1);
  if (in_chans == src) return weight;
  if (in_chans == 1) {
    if (src > 3) w = w.reshape({w.size(0), src / 3, 3, w.size(2), w.size(3)}).sum(2);
    else w = w.sum(1, /*keepdim=*/true);
  } else {
    if (src != 3) throw std::invalid_argument("adapt_input_conv: weight has " + std::to_string(src) +
                                              " input channels; only 3-channel weights can be adapted");
    const int64_t repeat = (in_chans + 2) / 3;
    w = w.repeat({1, repeat, 1, 1}).slice(1, 0, in_chans);
    w = w * (3.0 / static_cast<double>(in_chans));
  }
  return w.to(dtype);
}

LoadReport load_state_dict(torch::nn::Module& module, const TensorMap& tensors, const LoadOptions& options) {
  auto target = state_dict(module);
  LoadReport report;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;  // (destination, source)
  std::set<std::string> seen;
  for (const auto& [file_key, value] : tensors) {
    std::string key = options.rename() ? options.rename()(file_key) : file_key;
    if (key.empty()) continue;
    auto it = target.find(key);
    if (it == target.end()) {
      report.unexpected.push_back(file_key);
      continue;
    }
    seen.insert(key);
    torch::Tensor src = value;
    const auto& dst = it->second;
    if (src.sizes() != dst.sizes() && key == options.first_conv_weight() && src.dim() == 4 && dst.dim() == 4 &&
        src.size(0) == dst.size(0) && src.size(2) == dst.size(2) && src.size(3) == dst.size(3))
      src = adapt_input_conv(src, dst.size(1));
    if (src.sizes() != dst.sizes()) {
      report.mismatched.push_back(key + ": checkpoint " + shape_str(value.sizes()) + " vs model " +
                                  shape_str(dst.sizes()));
      continue;
    }
    copies.emplace_back(dst, src);
  }
  for (const auto& [key, value] : target)
    // BatchNorm's counter is optional in PyTorch's loader too (older checkpoints lack it).
    if (!seen.count(key) && !util::ends_with(key, "num_batches_tracked")) report.missing.push_back(key);
  if (options.strict() && !report.ok())
    throw std::runtime_error("Error(s) in loading state_dict:" + report.describe() +
                             "\n  The checkpoint does not fit this model: check the architecture and encoder "
                             "options it was saved with.");
  torch::NoGradGuard no_grad;
  for (auto& [dst, src] : copies) dst.copy_(src.to(dst.device(), dst.scalar_type()));
  return report;
}

}  // namespace smp::io
