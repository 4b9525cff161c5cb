// timm's EfficientNet builder (_efficientnet_builder.py / _efficientnet_blocks.py): block strings
// such as "ir_r2_k3_s2_e6_c24_se0.25" decoded into stages of blocks ("blocks.<stage>.<block>"), and
// the backbone shared by the EfficientNet and MobileNet-V3 families (stem, blocks, family head).
#pragma once

#include <smp/timm.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace smp::timm::effnet {

// One block of a stage, decoded from its block string. Kernel lists with several entries build
// MixedConv2d layers.
struct BlockDef {
  std::string type;  // "ir", "ds", "dsa", "er", "cn", "uir", "mqa" or "mha"
  int64_t out_chs = 0;
  int64_t stride = 1;
  std::string act;  // "" = the model's activation
  std::vector<int64_t> dw_kernel{3}, exp_kernel{1}, pw_kernel{1};
  int64_t kernel = 3;  // "cn" convolution
  double exp_ratio = 1.0;
  double se_ratio = 0.0;
  bool noskip = false;
  bool skip = false;         // "cn": force the residual
  bool pw_act = false;       // "dsa": activation after the point-wise conv
  bool s2d = false;          // space-to-depth stem block ("d1")
  int64_t num_experts = 0;   // CondConv experts ("cc")
  int64_t force_in_chs = 0;  // "fc"
  std::optional<int64_t> group_size;
  int64_t dw_start = 0, dw_mid = 0, dw_end = 0;       // "uir" depthwise kernels, 0 = absent
  int64_t num_heads = 0, key_dim = 0, kv_stride = 1;  // "mqa" / "mha"
};
using StageDefs = std::vector<std::vector<BlockDef>>;

// Decodes one block string; `repeats` receives its "r" count.
BlockDef decode_block(const std::string& block, int64_t* repeats);

struct DecodeOptions {
  // One multiplier for every stage, or one per stage.
  std::vector<double> depth_multiplier{1.0};
  bool depth_round = false;  // timm's depth_trunc='round' (default 'ceil')
  int64_t experts_multiplier = 1;
  bool fix_first_last = false;        // first and last stage keep their depth
  std::optional<int64_t> group_size;  // default for blocks that do not set "gs"
};

// Stage definitions (lists of block strings) with repeats expanded and depth-scaled as timm does.
StageDefs decode_arch_def(const std::vector<std::vector<std::string>>& arch, const DecodeOptions& options = {});

// timm's round_channels: make_divisible(channels * multiplier, divisor, channel_min, round_limit).
int64_t round_channels(double channels, double multiplier = 1.0, int64_t divisor = 8, int64_t channel_min = 0,
                       double round_limit = 0.9);
using RoundFn = std::function<int64_t(double)>;
RoundFn round_fn(double multiplier = 1.0, int64_t divisor = 8, double round_limit = 0.9);

enum class NormType { kBatchNorm, kGroupNorm, kLayerNorm, kEvoNormS0 };
struct NormSpec {
  NormType type = NormType::kBatchNorm;
  double eps = 1e-5;
  int64_t group_size = 0;  // kGroupNorm / kEvoNormS0 groups = channels / group_size
};

// Squeeze-and-excitation flavour of a model.
struct SeSpec {
  bool global_context = false;  // timm's 'gc' (GlobalContext) instead of SqueezeExcite
  std::string gate = "sigmoid";
  std::string force_act;  // activation inside the SE; "" = the block's
  RoundFn rd_round;       // reduced width from channels * ratio; empty = Python's round()
};

// Widths of one block of a pruned model (timm's _pruned/*.txt).
struct PrunedBlock {
  int64_t stage, block, mid, se, out;
};

enum class HeadType {
  kEfficientNet,  // conv_head + bn2 before pooling, then the classifier
  kMobileNetV3,   // pooling, conv_head (+ norm_head), activation, classifier
};

struct ModelConfig {
  StageDefs blocks;
  HeadType head = HeadType::kEfficientNet;
  int64_t num_features = 1280;  // head width; 0 = no head conv (EfficientNet head only)
  int64_t stem_size = 32, stem_kernel_size = 3;
  bool fix_stem = false;
  bool head_bias = true, head_norm = false;  // MobileNet-V3 head conv
  std::string pad_type;                      // "" or "same" (TensorFlow ports)
  RoundFn round_chs = round_fn();
  bool se_from_exp = false;  // SE width from the expanded width (MobileNet-V3) or the block input
  std::string act = "relu";
  NormSpec norm;
  std::string aa;  // anti-aliasing layer, "" = none
  SeSpec se;
  std::optional<double> layer_scale_init;
  std::vector<PrunedBlock> pruned;
};

// The backbone: "conv_stem", "bn1", "blocks" and, without features_only, the family's head.
// feature_info lists the stem (when the first block is strided) and the end of every stage that is
// followed by a downsampling (or is the last one), as timm's builder records them.
Backbone create_efficientnet(const std::string& name, const ModelConfig& config, const ModelArgs& args);

}  // namespace smp::timm::effnet
