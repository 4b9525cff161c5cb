#include <smp/models.h>

#include <fmt/format.h>

#include <algorithm>

#include "inference/model_cache.h"
#include "util/log.h"
#include "util/strings.h"

namespace smp {

void SegmentationModelImpl::set_encoder(Encoder encoder) { encoder_ = register_module("encoder", std::move(encoder)); }

void SegmentationModelImpl::set_decoder(std::shared_ptr<torch::nn::Module> decoder,
                                        std::function<torch::Tensor(const std::vector<torch::Tensor>&)> forward) {
  register_module("decoder", std::move(decoder));
  decoder_ = std::move(forward);
}

namespace {

// The norms smp freezes with the encoder: those keeping running statistics (BatchNorm, InstanceNorm
// with track_running_stats), whichever module type implements them.
void set_running_stat_norms_mode(torch::nn::Module& root, bool training) {
  for (const auto& module : root.modules())
    if (module->named_buffers(/*recurse=*/false).contains("running_mean")) module->train(training);
}

}  // namespace

void SegmentationModelImpl::set_encoder_trainable(bool trainable) {
  for (auto& p : encoder_->parameters()) p.set_requires_grad(trainable);
  set_running_stat_norms_mode(*encoder_, trainable && is_training());
  encoder_frozen_ = !trainable;
}

// eval() is eval everywhere; train() keeps a frozen encoder's running-statistics norms in eval.
void SegmentationModelImpl::train(bool on) {
  torch::nn::Module::train(on);
  if (on && encoder_frozen_) set_running_stat_norms_mode(*encoder_, false);
}

void SegmentationModelImpl::set_heads(std::shared_ptr<torch::nn::Module> head,
                                      std::function<torch::Tensor(const torch::Tensor&)> forward,
                                      const std::optional<AuxParams>& aux) {
  register_module("segmentation_head", std::move(head));
  segmentation_head_ = std::move(forward);
  if (aux)
    classification_head_ =
        register_module("classification_head", classification_head(encoder_->out_channels().back(), *aux));
}

void SegmentationModelImpl::check_input_shape(const torch::Tensor& x) const {
  const auto in_channels = encoder_->in_channels();
  if (x.dim() != 4)
    throw std::invalid_argument(fmt::format("Expected a 4-d input [batch, {}, height, width], got a {}-d tensor",
                                            in_channels, x.dim()));
  if (x.size(1) != in_channels)
    throw std::invalid_argument(fmt::format(
        "Wrong number of input channels: the model takes {} (in_channels={}), the input has {}. Convert the images "
        "or build the model with in_channels={}.",
        in_channels, in_channels, x.size(1), x.size(1)));
  if (!requires_divisible_input_shape_) return;
  const auto h = x.size(2), w = x.size(3), s = encoder_->output_stride();
  if (h % s != 0 || w % s != 0) {
    auto up = [s](int64_t v) { return v % s ? (v / s + 1) * s : v; };
    throw std::invalid_argument(fmt::format(
        "Wrong input shape height={}, width={}. Expected image height and width divisible by {}. Consider pad your "
        "images to shape ({}, {}).",
        h, w, s, up(h), up(w)));
  }
}

SegmentationOutput SegmentationModelImpl::apply_heads(const torch::Tensor& decoded, const torch::Tensor& deepest) {
  SegmentationOutput out;
  out.mask = segmentation_head_(decoded);
  if (classification_head_) out.label = classification_head_->forward(deepest);
  return out;
}

SegmentationOutput SegmentationModelImpl::forward_all(const torch::Tensor& x) {
  check_input_shape(x);
  auto features = encoder_->forward(x);
  if (!decoder_) throw std::logic_error(arch_ + " registered no decoder; it decodes in its own forward_all");
  return apply_heads(decoder_(features), features.back());
}

SegmentationOutput SegmentationModelImpl::predict(const torch::Tensor& x, const InferenceOptions& options) {
  if (is_training()) eval();
  torch::InferenceMode guard;
  const auto& current = inference_ ? inference_->options() : InferenceOptions();
  if (!inference_ || current.dtype() != options.dtype() || current.optimize() != options.optimize() ||
      current.max_cached_shapes() != options.max_cached_shapes())
    inference_ = std::make_shared<inference::ModelCache>(*this, options);
  return inference_->run(x);
}

namespace {

// smp maps its deprecated timm- encoders to "tu-" ones and renames their old checkpoints' keys: every
// universal encoder whose timm name starts with one of these gets the "model." level its keys lacked,
// and GerNet's stages their flattened names.
std::string deprecated_timm_encoder_key(const std::string& timm_name, const std::string& key) {
  static const std::vector<std::string> patterns = {"regnet", "res2", "resnest", "mobilenetv3", "gernet"};
  if (std::none_of(patterns.begin(), patterns.end(),
                   [&](const std::string& p) { return util::starts_with(timm_name, p); }))
    return key;
  std::string renamed = key;
  if (util::starts_with(key, "encoder.") && !util::starts_with(key, "encoder.model."))
    renamed = "encoder.model." + key.substr(8);
  if (timm_name.find("gernet") != std::string::npos)
    for (size_t at; (at = renamed.find(".stages.")) != std::string::npos;) renamed.replace(at, 8, ".stages_");
  return renamed;
}

}  // namespace

io::LoadReport SegmentationModelImpl::load_state_dict(const io::TensorMap& tensors, bool strict) {
  const auto* timm_encoder = dynamic_cast<const TimmUniversalEncoderImpl*>(encoder_.get());
  const std::string timm_name = timm_encoder ? timm_encoder->timm_name() : "";
  auto rename = [this, timm_name](const std::string& key) {
    const std::string current = legacy_keys_ ? legacy_keys_(key) : key;
    return timm_name.empty() ? current : deprecated_timm_encoder_key(timm_name, current);
  };
  const auto report = io::load_state_dict(*this, tensors, io::LoadOptions().strict(strict).rename(rename));
  if (!report.mismatched.empty())
    log::logger().warn("Mismatched keys: these layers keep their initial values and need training:\n  {}",
                       util::join(report.mismatched, "\n  "));
  return report;
}

}  // namespace smp
