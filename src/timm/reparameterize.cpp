#include <smp/reparameterize.h>

#include "timm/layers/mobileone.h"

namespace smp::timm {

// timm's reparameterize_model: each block folds itself, then its remaining children are visited
// (a block that folds its own re-parameterisable children removes them first).
int64_t reparameterize(torch::nn::Module& model) {
  int64_t folded = 0;
  if (auto* block = dynamic_cast<layers::Reparameterizable*>(&model)) folded += block->reparameterize() ? 1 : 0;
  for (const auto& child : model.children()) folded += reparameterize(*child);
  return folded;
}

}  // namespace smp::timm
