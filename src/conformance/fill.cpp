#include <smp/fill.h>

#include <cmath>

#include "util/strings.h"

namespace smp::fill {

namespace {

uint64_t fnv1a64(const std::string& s) {
  uint64_t h = 0xCBF29CE484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001B3ULL;
  }
  return h;
}

// splitmix64 finaliser over the name's hash and the element position, to u in [0, 1).
double mix(uint64_t name_hash, uint64_t index) {
  uint64_t z = name_hash + (index + 1) * 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z = z ^ (z >> 31);
  return static_cast<double>(z >> 40) / 16777216.0;
}

// Fills a double buffer with `value(u)` for every element, then converts once to the dtype.
template <typename Fn>
torch::Tensor generate(const std::string& name, at::IntArrayRef shape, torch::Dtype dtype, Fn value) {
  auto out = torch::empty(shape, torch::kFloat64);
  auto* p = out.data_ptr<double>();
  const uint64_t base = fnv1a64(name);
  const auto n = static_cast<uint64_t>(out.numel());
  for (uint64_t i = 0; i < n; ++i) p[i] = value(mix(base, i));
  return out.to(dtype);
}

std::string last_part(const std::string& name) {
  auto dot = name.rfind('.');
  return dot == std::string::npos ? name : name.substr(dot + 1);
}

}  // namespace

double uniform(const std::string& name, uint64_t index) { return mix(fnv1a64(name), index); }

torch::Tensor input(const std::string& name, at::IntArrayRef shape, torch::Dtype dtype) {
  return generate(name, shape, dtype, [](double u) { return 2 * u - 1; });
}

torch::Tensor parameter(const std::string& name, at::IntArrayRef shape, torch::Dtype dtype) {
  if (!c10::isFloatingType(dtype) && !c10::isComplexType(dtype)) return torch::zeros(shape, dtype);
  if (util::ends_with(name, "running_var")) return generate(name, shape, dtype, [](double u) { return 0.5 + u; });
  if (shape.size() >= 2) {
    int64_t fan_in = 1;
    for (size_t d = 1; d < shape.size(); ++d) fan_in *= shape[d];
    const double bound = std::sqrt(3.0 / static_cast<double>(std::max<int64_t>(fan_in, 1)));
    return generate(name, shape, dtype, [bound](double u) { return (2 * u - 1) * bound; });
  }
  const auto last = last_part(name);
  if (last == "weight" || last == "gamma" || last == "scale")
    return generate(name, shape, dtype, [](double u) { return 1 + 0.25 * (2 * u - 1); });
  return generate(name, shape, dtype, [](double u) { return 0.25 * (2 * u - 1); });
}

void fill_module(torch::nn::Module& module, const std::function<std::string(const std::string&)>& fill_name) {
  torch::NoGradGuard no_grad;
  auto fill_one = [&](const std::string& key, torch::Tensor& t) {
    const auto name = fill_name ? fill_name(key) : key;
    t.copy_(parameter(name, t.sizes(), t.scalar_type()));
  };
  for (auto& p : module.named_parameters()) fill_one(p.key(), p.value());
  for (auto& b : module.named_buffers()) fill_one(b.key(), b.value());
}

}  // namespace smp::fill
