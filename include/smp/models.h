// Segmentation models: encoder -> decoder -> segmentation head (+ optional classification head).
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <smp/encoders.h>
#include <smp/modules.h>

#include <optional>
#include <string>
#include <vector>

namespace smp {

// The options every architecture shares, with smp's keyword names. encoder_weights: "" (None), a
// safetensors path, or pretrained weights by name (EncoderOptions::weights). Its default stays ""
// rather than smp's "imagenet", so building a model never reaches for the network unasked.
// output_stride is what smp passes to the encoder through **kwargs (8, 16 or 32).
#define SMP_ENCODER_MODEL_OPTIONS(DEFAULT_ENCODER)                   \
  TORCH_ARG(std::string, encoder_name) = DEFAULT_ENCODER;            \
  TORCH_ARG(int64_t, encoder_depth) = 5;                             \
  TORCH_ARG(std::string, encoder_weights) = "";                      \
  TORCH_ARG(EncoderIndices, encoder_indices) = {};                   \
  TORCH_ARG(std::vector<int64_t>, encoder_channels) = {};            \
  TORCH_ARG(int64_t, in_channels) = 3;                               \
  TORCH_ARG(int64_t, classes) = 1;                                   \
  TORCH_ARG(std::string, activation) = "";                           \
  TORCH_ARG(std::optional<AuxParams>, aux_params) = std::nullopt;  \
  TORCH_ARG(int64_t, output_stride) = 32

struct SegmentationOutput {
  torch::Tensor mask;
  torch::Tensor label;  // undefined without aux_params
};

class SegmentationModelImpl : public torch::nn::Module {
 public:
  // Mask logits (after `activation`), [N, classes, H, W].
  torch::Tensor forward(const torch::Tensor& x) { return forward_all(x).mask; }
  SegmentationOutput forward_all(const torch::Tensor& x);
  // eval() + inference mode.
  SegmentationOutput predict(const torch::Tensor& x);
  // Throws when x is not [N, in_channels, H, W] or H, W are not divisible by the output stride.
  void check_input_shape(const torch::Tensor& x) const;

  EncoderImpl& encoder() { return *encoder_; }
  const std::string& arch() const { return arch_; }
  // Constructor keyword arguments as smp's config.json holds them (without _model_class).
  const nlohmann::json& config() const { return config_; }

 protected:
  SegmentationModelImpl(std::string arch, nlohmann::json config) : arch_(std::move(arch)), config_(std::move(config)) {}
  virtual torch::Tensor decode(const std::vector<torch::Tensor>& features) = 0;
  // Registers "encoder"; call first so the parameter order follows smp's.
  void set_encoder(Encoder encoder);
  // Registers "segmentation_head" and, with aux_params, "classification_head" on the last feature.
  void set_heads(torch::nn::Sequential segmentation_head, const std::optional<AuxParams>& aux);
  bool requires_divisible_input_shape_ = true;

 private:
  std::string arch_;
  nlohmann::json config_;
  Encoder encoder_;
  torch::nn::Sequential segmentation_head_{nullptr}, classification_head_{nullptr};
};
using SegmentationModel = std::shared_ptr<SegmentationModelImpl>;

// ---- Unet ----
struct UnetOptions {
  SMP_ENCODER_MODEL_OPTIONS("resnet34");
  TORCH_ARG(NormSpec, decoder_use_norm) = {};
  TORCH_ARG(std::vector<int64_t>, decoder_channels) = std::vector<int64_t>{256, 128, 64, 32, 16};
  TORCH_ARG(std::string, decoder_attention_type) = "";  // "" or "scse"
  TORCH_ARG(std::string, decoder_interpolation) = "nearest";
};

class UnetImpl : public SegmentationModelImpl {
 public:
  explicit UnetImpl(const UnetOptions& options);

 protected:
  torch::Tensor decode(const std::vector<torch::Tensor>& features) override;

 private:
  std::shared_ptr<torch::nn::Module> decoder_;
};
TORCH_MODULE(Unet);

// Builds an architecture by name from smp keyword arguments (a JSON object, as config.json holds
// them) or from key=value words as the command line takes them. Values read as JSON (null, true,
// [0,2,4], "last", {"classes": 4}) or bare words (last, tu-resnet18); Python's None/True/False too.
SegmentationModel create_model_from_kwargs(const std::string& arch, const nlohmann::json& kwargs);
SegmentationModel create_model(const std::string& arch, const std::vector<std::string>& words);
// The architectures create_model knows, and each one's valid keyword names.
std::vector<std::string> list_architectures();
std::vector<std::string> architecture_keys(const std::string& arch);
// key=value words to a JSON object (no validation of the keys).
nlohmann::json parse_words(const std::vector<std::string>& words);

}  // namespace smp
