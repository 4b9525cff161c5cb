#include "timm/layers/token_norm.h"

#include "timm/layers/norm.h"

namespace smp::timm::layers {

torch::nn::AnyModule make_token_norm(const TokenNormSpec& spec, int64_t dim) {
  if (spec.kind == "rmsnorm") return torch::nn::AnyModule(RmsNorm(dim, spec.eps));
  if (spec.kind == "layernorm")
    return torch::nn::AnyModule(torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(spec.eps)));
  throw std::invalid_argument("unknown norm layer '" + spec.kind + "' (expected layernorm or rmsnorm)");
}

}  // namespace smp::timm::layers
