// The configurable "bring your own blocks" network of timm's byobnet.py, shared by the byobnet and
// byoanet families: a model is a stem, stages of typed blocks and an optional final 1x1 conv, all
// described by a ModelCfg. byoanet adds self-attention blocks through SelfAttnCfg::make.
#pragma once

#include <smp/timm.h>
#include <torch/torch.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace smp::timm::byobnet {

// Channel attention inside blocks, by timm's create_attn name ("se", "eca", "gca", "bat"; "" none),
// with the keyword arguments byobnet's configurations use (< 0: the layer's default).
struct AttnCfg {
  std::string layer;
  double rd_ratio = -1.0;
  int64_t rd_divisor = -1;
  int64_t block_size = -1;  // "bat"
};

// A self-attention layer of a "self_attn" block. `make(channels, stride, feat_size)` builds it;
// feat_size is the (H, W) the layer sees when the model has a fixed input size, else empty.
struct SelfAttnCfg {
  std::string layer;  // for messages; "" = none
  std::function<torch::nn::AnyModule(int64_t, int64_t, const std::vector<int64_t>&)> make;
};

// timm's per-block keyword arguments (only those byob configurations set).
struct BlockKwargs {
  std::optional<bool> bottle_in, linear_out, extra_conv;
  std::optional<int64_t> kernel_size, num_conv_branches;
};

struct BlockCfg {
  std::string type;  // basic, bottle, dark, edge, rep, one, self_attn
  int64_t d = 1;     // repeats
  int64_t c = 0;     // output channels (before the model's width factor)
  int64_t s = 2;     // stride of the stage (its first block's config decides)
  int64_t gs = 0;    // group size; 0 = no groups, 1 = depthwise
  double br = 1.0;   // bottleneck ratio
  // RepVGG's alternating groups: the group size from (out channels, block index in stage) when set.
  std::function<int64_t(int64_t, int64_t)> gs_fn;
  // Block-level overrides of the model's attention, self-attention and block kwargs (replace, not merge).
  std::optional<AttnCfg> attn;
  std::optional<SelfAttnCfg> self_attn;
  std::optional<BlockKwargs> kwargs;
};
using StageCfg = std::vector<BlockCfg>;

struct ModelCfg {
  std::vector<StageCfg> blocks;
  std::string downsample = "conv1x1";  // "conv1x1", "avg" or "" (no shortcut when the shape changes)
  std::string stem_type = "3x3";
  std::string stem_pool = "maxpool";
  std::vector<int64_t> stem_chs = {32};  // one entry: a width; several: timm's per-conv list
  double width_factor = 1.0;
  int64_t num_features = 0;  // final 1x1 conv width; 0 = none
  std::string act = "relu";
  int64_t evonorm_group_size = 0;  // > 0: EvoNorm2dS0a of this group size instead of BatchNorm2d
  std::string aa;                  // anti-aliasing of strided convs in the stages ("avg")
  int64_t head_hidden_size = 0;
  std::string head_type = "classifier";  // classifier, mlp, attn_abs
  // The pretrained image size of fixed-size models (attention pool heads, BoTNet): timm's img_size.
  int64_t img_size = 0;
  AttnCfg attn;
  SelfAttnCfg self_attn;
  BlockKwargs block_kwargs;
};

// timm's interleave_blocks: `d` single blocks of types[0], types[1] at the positions `every` picks
// (an int n: every (n+1)th starting at n, or at 0 when `first`; a list: those indices).
StageCfg interleave_blocks(const std::string& type_a, const std::string& type_b, int64_t d,
                           const std::vector<int64_t>& every_list, int64_t every, bool first, const BlockCfg& proto);

class ByobNetImpl : public BackboneImpl {
 public:
  ByobNetImpl(const std::string& name, const ModelCfg& cfg, const ModelArgs& args);

  std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                   const std::vector<int64_t>& indices) override;
  torch::Tensor forward(const torch::Tensor& x) override;
  std::vector<std::string> flattened_children() const override;
  std::string first_conv() const override { return first_conv_; }

 private:
  torch::Tensor run_stem(const torch::Tensor& x, torch::Tensor* intermediate);

  std::string first_conv_;
  bool stem_is_stack_ = false;
  std::vector<torch::nn::AnyModule> stem_convs_;
  std::function<torch::Tensor(const torch::Tensor&)> stem_pool_;
  int64_t stem_feat_idx_ = -1;  // stem conv whose output is feature 0 (-1: the stem's output)
  std::vector<int64_t> stage_ends_;
  int64_t num_stages_ = 0;
  int64_t available_features_ = 0;
  torch::nn::Sequential stages_{nullptr};
  torch::nn::AnyModule final_conv_;
  torch::nn::AnyModule head_;  // empty without a classifier
};
TORCH_MODULE(ByobNet);

}  // namespace smp::timm::byobnet
