// Encoders as smp's decoders see them: a list of feature maps [x, f1 .. f_depth] where f_k has
// reduction 2^k (capped by the output stride) and out_channels()[k] channels (0 for dummies).
#pragma once

#include <torch/torch.h>

#include <smp/timm.h>

#include <string>
#include <vector>

namespace smp {

class EncoderImpl : public torch::nn::Module {
 public:
  virtual std::vector<torch::Tensor> forward(const torch::Tensor& x) = 0;
  // [in_channels, c_1, ..., c_depth]
  virtual std::vector<int64_t> out_channels() const = 0;
  // Channels of the input image: out_channels()[0] unless the first feature is not the input itself
  // (smp's VGG encoders start with their first conv block's output).
  virtual int64_t in_channels() const { return out_channels().front(); }
  virtual int64_t depth() const = 0;
  // Input height and width must be divisible by this: min(output stride, 2^depth).
  virtual int64_t output_stride() const = 0;
  // The features table of the design document (empty for encoders without one).
  virtual std::string features_info_str() const { return ""; }
  // Preprocessing of the pretrained weights.
  virtual std::vector<double> mean() const { return {0.485, 0.456, 0.406}; }
  virtual std::vector<double> std() const { return {0.229, 0.224, 0.225}; }
};
using Encoder = std::shared_ptr<EncoderImpl>;

// encoder_indices: "first" (default), "last", or explicit feature indices (the table's index column).
struct EncoderIndices {
  EncoderIndices() = default;
  EncoderIndices(const char* mode) : mode(mode) {}               // NOLINT: "first" / "last"
  EncoderIndices(std::string mode) : mode(std::move(mode)) {}    // NOLINT
  EncoderIndices(std::vector<int64_t> list) : mode("list"), list(std::move(list)) {}  // NOLINT
  EncoderIndices(std::initializer_list<int64_t> list) : mode("list"), list(list) {}    // NOLINT
  std::string mode = "first";
  std::vector<int64_t> list;
};

struct EncoderOptions {
  TORCH_ARG(std::string, name) = "resnet34";
  TORCH_ARG(int64_t, in_channels) = 3;
  TORCH_ARG(int64_t, depth) = 5;
  TORCH_ARG(int64_t, output_stride) = 32;
  TORCH_ARG(EncoderIndices, indices) = {};
  // One entry per feature slot; empty = keep the backbone's channel counts.
  TORCH_ARG(std::vector<int64_t>, channels) = {};
  // "" = no weights; a path to a safetensors file (full timm model or features-only keys; a value
  // holding '/' or ending in ".safetensors"); otherwise pretrained weights from the Hugging Face hub
  // (smp::hub): smp's names for its own encoders ("imagenet", "ssl", ...), and for "tu-" encoders
  // any value (smp's True) selects the tag in the name, "tu-<model>.<tag>", or timm's default tag.
  TORCH_ARG(std::string, weights) = "";
  // Training-time regularisation, no effect in eval mode: timm's create_model arguments of the same
  // names for "tu-" encoders, and smp's own for mit_b* (smp's resnets have neither). drop_path_rate:
  // the stochastic depth rate the last block reaches. drop_rate: dropout where the family applies it
  // (mit_b*: attention and MLP; timm's families: only their classifier heads, which encoders leave out).
  TORCH_ARG(double, drop_path_rate) = 0.0;
  TORCH_ARG(double, drop_rate) = 0.0;
};

// The design document's universal timm encoder (encoder names "tu-<timm model>").
class TimmUniversalEncoderImpl : public EncoderImpl {
 public:
  explicit TimmUniversalEncoderImpl(const EncoderOptions& options);
  std::vector<torch::Tensor> forward(const torch::Tensor& x) override;
  std::vector<int64_t> out_channels() const override;
  int64_t depth() const override { return depth_; }
  int64_t output_stride() const override;
  std::string features_info_str() const override;
  std::vector<double> mean() const override { return mean_; }
  std::vector<double> std() const override { return std_; }

  timm::FeaturesImpl& model() { return *model_; }
  // The timm model name ("tu-" and nothing else removed).
  const std::string& timm_name() const { return timm_name_; }

 private:
  struct Slot {  // one position 1..depth of the adapted feature list
    int64_t feature = -1;  // position in the timm model's output; -1 = dummy
    int64_t channels = 0;  // selected (native) channels
    int64_t native_reduction = 0;
    int64_t reduction = 0;  // adapted reduction
    int64_t out_channels = 0;
  };
  std::string timm_name_;
  timm::Features model_{nullptr};
  std::vector<timm::FeatureInfo> candidates_;    // the timm model's features (reduction > 1)
  std::vector<int64_t> candidate_indices_;       // their timm feature indices
  std::vector<bool> selected_;                   // per candidate
  std::vector<Slot> slots_;
  torch::nn::ModuleList projections_{nullptr};  // 1x1 convs, Identity where channels are kept
  std::vector<bool> projected_;
  int64_t in_channels_, depth_, output_stride_;
  std::vector<double> mean_, std_;
};
TORCH_MODULE(TimmUniversalEncoder);

// get_encoder(name, ...): "tu-<timm name>" and the smp encoder names.
Encoder create_encoder(const EncoderOptions& options);
// smp's own encoder names (resnet18 .. resnext101_32x48d, mit_b0 .. mit_b5).
std::vector<std::string> list_smp_encoders();

}  // namespace smp
