// timm's Selective Kernel ResNets: timm's ResNet whose blocks convolve through SelectiveKernel
// layers. The sknet family and smp's timm-sk* encoders build the same network, each with its own
// SelectiveKernel settings.
#pragma once

#include <smp/timm.h>

#include <string>
#include <vector>

namespace smp::timm::sknet {

struct SkNetConfig {
  bool bottleneck = false;  // SK bottleneck blocks (expansion 4), else SK basic blocks
  std::vector<int64_t> layers;
  int64_t cardinality = 1, base_width = 64;
  bool d_variant = false;  // timm's 'D': 32-wide deep stem, average-pool shortcut
  // SelectiveKernel settings of every block (timm's sk_kwargs).
  double rd_ratio = 1.0 / 16;
  int64_t rd_divisor = 8;
  bool split_input = true;
};

Backbone create_sknet(const std::string& name, const SkNetConfig& cfg, const ModelArgs& args);

}  // namespace smp::timm::sknet
