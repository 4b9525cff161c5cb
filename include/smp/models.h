// Segmentation models: encoder -> decoder -> segmentation head (+ optional classification head).
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <smp/encoders.h>
#include <smp/inference_options.h>
#include <smp/io.h>
#include <smp/modules.h>
#include <smp/options.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace smp {

// The options every architecture shares, with smp's keyword names, as entries of an option list
// (smp/options.h). encoder_weights: "" (None), a safetensors path, or pretrained weights by name
// (EncoderOptions::weights). Its default stays "" rather than smp's "imagenet", so building a model
// never reaches for the network unasked. encoder_indices, encoder_channels, drop_path_rate, drop_rate
// and output_stride are what smp passes to the encoder through **kwargs (output_stride: 8, 16 or 32).
// Models with their own encoder_output_stride argument (PAN, DeepLabV3, DeepLabV3Plus) take the options without it: smp
// refuses output_stride in their **kwargs as a duplicate keyword.
#define SMP_ENCODER_MODEL_OPTIONS_WITHOUT_STRIDE(OPTION, KWARG, DEFAULT_ENCODER, DEFAULT_DEPTH) \
  OPTION(std::string, encoder_name, DEFAULT_ENCODER)                                            \
  OPTION(int64_t, encoder_depth, DEFAULT_DEPTH)                                                 \
  OPTION(std::string, encoder_weights, "")                                                      \
  OPTION(int64_t, in_channels, 3)                                                               \
  OPTION(int64_t, classes, 1)                                                                   \
  OPTION(std::string, activation, "")                                                           \
  OPTION(std::optional<AuxParams>, aux_params, std::nullopt)                                    \
  KWARG(EncoderIndices, encoder_indices, {})                                                    \
  KWARG(std::vector<int64_t>, encoder_channels, {})                                             \
  KWARG(double, drop_path_rate, 0.0) /* timm's stochastic depth, training only */               \
  KWARG(double, drop_rate, 0.0)
#define SMP_ENCODER_MODEL_OPTIONS(OPTION, KWARG, DEFAULT_ENCODER, DEFAULT_DEPTH)         \
  SMP_ENCODER_MODEL_OPTIONS_WITHOUT_STRIDE(OPTION, KWARG, DEFAULT_ENCODER, DEFAULT_DEPTH) \
  KWARG(int64_t, output_stride, 32)

namespace detail {
struct PretrainedAccess;
}
namespace inference {
class ModelCache;
}

struct SegmentationOutput {
  torch::Tensor mask;
  torch::Tensor label;  // undefined without aux_params
};

class SegmentationModelImpl : public torch::nn::Module {
 public:
  // Mask logits (after `activation`), [N, classes, H, W].
  torch::Tensor forward(const torch::Tensor& x) { return forward_all(x).mask; }
  // Encoder -> decoder -> heads; DPT, whose decoder also takes the ViT's prefix tokens, overrides it.
  virtual SegmentationOutput forward_all(const torch::Tensor& x);
  // eval() + inference mode, through the inference path (smp/inference.h) unless options.optimize()
  // is false; the compiled programs are kept with the model until its weights change.
  SegmentationOutput predict(const torch::Tensor& x, const InferenceOptions& options = {});
  // Throws when x is not [N, in_channels, H, W] or H, W are not divisible by the output stride.
  void check_input_shape(const torch::Tensor& x) const;

  EncoderImpl& encoder() { return *encoder_; }
  const std::string& arch() const { return arch_; }
  // Constructor keyword arguments as smp's config.json holds them (without _model_class).
  const nlohmann::json& config() const { return config_; }
  // Writes `directory`/config.json (config() plus "_model_class"), model.safetensors and a model card
  // README.md as smp's save_pretrained does, creating the folder; smp::from_pretrained
  // (smp/pretrained.h) reads it back. The card names the architecture, encoder, keyword arguments and,
  // when given, the dataset and metrics (name -> value). As huggingface_hub does, an existing README.md
  // is kept (it may have been edited by hand). Files are written beside their targets first, so a
  // failure leaves existing files as they were; other files in the folder are not touched.
  void save_pretrained(const std::string& directory, const std::string& dataset = "",
                       const std::map<std::string, double>& metrics = {}) const;

  // As smp: freezing stops gradients to the encoder's parameters and puts its running-statistics
  // norms (BatchNorm, InstanceNorm) in eval mode, where train() leaves the whole encoder until
  // unfreeze_encoder(), which makes them trainable and puts those norms back in training mode.
  void freeze_encoder() { set_encoder_trainable(false); }
  void unfreeze_encoder() { set_encoder_trainable(true); }
  bool encoder_frozen() const { return encoder_frozen_; }
  void train(bool on = true) override;

  // Loads a state dict of this model (save_pretrained's model.safetensors, any smp version's
  // checkpoint) as smp's load_state_dict does: the names of older smp versions are renamed first
  // (DeepLabV3's Sequential decoder; the deprecated timm- encoders, now "tu-" ones). strict: a missing,
  // unexpected or mismatched key throws and the model is unchanged; otherwise those tensors are skipped,
  // listed in the report and, for shape mismatches, in a warning (such layers need training).
  io::LoadReport load_state_dict(const io::TensorMap& tensors, bool strict = true);

 protected:
  SegmentationModelImpl(std::string arch, nlohmann::json config) : arch_(std::move(arch)), config_(std::move(config)) {}
  // Registers "encoder"; call first so the parameter order follows smp's.
  void set_encoder(Encoder encoder);
  // Registers "decoder" (any module holder whose forward takes the encoder's features); the default
  // forward_all runs it between the encoder and the heads.
  template <typename Decoder>
  void set_decoder(Decoder decoder) {
    auto module = decoder.ptr();
    set_decoder(module, [module](const std::vector<torch::Tensor>& features) { return module->forward(features); });
  }
  void set_decoder(std::shared_ptr<torch::nn::Module> decoder,
                   std::function<torch::Tensor(const std::vector<torch::Tensor>&)> forward);
  // Registers "segmentation_head" (any module holder with a Tensor -> Tensor forward) and, with
  // aux_params, "classification_head" on the last feature.
  template <typename Head>
  void set_heads(Head head, const std::optional<AuxParams>& aux) {
    auto module = head.ptr();
    set_heads(module, [module](const torch::Tensor& x) { return module->forward(x); }, aux);
  }
  void set_heads(std::shared_ptr<torch::nn::Module> head, std::function<torch::Tensor(const torch::Tensor&)> forward,
                 const std::optional<AuxParams>& aux);
  // Mask (segmentation head) and label (classification head on `deepest`, when there is one).
  SegmentationOutput apply_heads(const torch::Tensor& decoded, const torch::Tensor& deepest);
  bool requires_divisible_input_shape_ = true;
  // This architecture's key names in older smp versions -> today's (load_state_dict applies it).
  std::function<std::string(const std::string&)> legacy_keys_;

 private:
  friend struct detail::PretrainedAccess;
  std::string arch_;
  nlohmann::json config_;
  void set_encoder_trainable(bool trainable);

  Encoder encoder_;
  bool encoder_frozen_ = false;
  std::function<torch::Tensor(const std::vector<torch::Tensor>&)> decoder_;
  std::function<torch::Tensor(const torch::Tensor&)> segmentation_head_;
  torch::nn::Sequential classification_head_{nullptr};
  std::shared_ptr<inference::ModelCache> inference_;  // made by the first predict
};
using SegmentationModel = std::shared_ptr<SegmentationModelImpl>;

// ---- Unet ----
#define SMP_UNET_OPTIONS(OPTION, KWARG)                                                           \
  SMP_ENCODER_MODEL_OPTIONS(OPTION, KWARG, "resnet34", 5)                                         \
  OPTION(NormSpec, decoder_use_norm, {})                                                          \
  OPTION(std::vector<int64_t>, decoder_channels, (std::vector<int64_t>{256, 128, 64, 32, 16}))    \
  OPTION(std::string, decoder_attention_type, "") /* "" or "scse" */                              \
  OPTION(std::string, decoder_interpolation, "nearest")
struct UnetOptions {
  SMP_OPTIONS(SMP_UNET_OPTIONS)
};

class UnetImpl : public SegmentationModelImpl {
 public:
  explicit UnetImpl(const UnetOptions& options);
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
