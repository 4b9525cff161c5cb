// The network layout GhostNet (ghostnet.py, V1-V3) and RepGhostNet (repghost.py) share: a strided 3x3
// stem (conv_stem, bn1), nine stages of bottlenecks, a 1x1 conv-BN-ReLU stage, global pooling,
// conv_head + ReLU and the classifier. Features: the stem conv, then every stage whose last block is
// strided. Each family supplies its stage table and its bottleneck.
#pragma once

#include <smp/timm.h>

#include <functional>
#include <string>
#include <vector>

#include "timm/layers/norm_act.h"

namespace smp::timm::ghost_frame {

struct BlockCfg {
  int64_t k, exp, c;  // kernel, expansion width, output width (before the width multiplier)
  double se;  // squeeze-excite ratio, 0 for none
  int64_t s;  // stride
};
using StageCfgs = std::vector<std::vector<BlockCfg>>;

struct BlockArgs {
  int64_t in, mid, out;  // widths after the multiplier
  const BlockCfg& cfg;
  int64_t index;  // the block's position in the whole network
};
using MakeBlock = std::function<torch::nn::AnyModule(const BlockArgs&)>;

class GhostFrameImpl : public BackboneImpl {
 public:
  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override;
  torch::Tensor forward(const torch::Tensor& x) override;
  std::vector<std::string> flattened_children() const override { return {"blocks"}; }
  std::string first_conv() const override { return "conv_stem"; }

 protected:
  GhostFrameImpl(const std::string& name, const ModelArgs& args, double width, const StageCfgs& stages,
                 const MakeBlock& make_block);

 private:
  torch::nn::Conv2d conv_stem_{nullptr}, conv_head_{nullptr};
  layers::BatchNormAct2d bn1_{nullptr};
  torch::nn::ModuleList blocks_{nullptr};
  torch::nn::Linear classifier_{nullptr};
  std::vector<int64_t> feature_stage_;  // the stage after which each feature is taken (-1: the stem conv)
};

}  // namespace smp::timm::ghost_frame
