// timm backbones in C++: the model registry, feature metadata and timm's features_only wrapper.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace smp::timm {

// One feature map a backbone can return: timm's feature_info entry.
struct FeatureInfo {
  std::string module;  // dotted module name in the full model, e.g. "layer1", "stages.0"
  int64_t num_chs = 0;
  int64_t reduction = 1;  // input size / feature size
};

// timm.create_model keyword arguments that matter for segmentation backbones.
struct ModelArgs {
  // Build the backbone for feature extraction only (no classifier). Set by create_features().
  TORCH_ARG(bool, features_only) = false;
  // Indices into Backbone::feature_info(); empty = the family's default selection.
  TORCH_ARG(std::vector<int64_t>, out_indices) = {};
  TORCH_ARG(int64_t, in_chans) = 3;
  // 8, 16 or 32 (the default); families without dilation support reject anything but 32.
  TORCH_ARG(int64_t, output_stride) = 32;
  // Classifier width; -1 = the model's pretrained default (1000 for most, 0 = no head for some).
  TORCH_ARG(int64_t, num_classes) = -1;
  // Path of a checkpoint (safetensors) to load after construction; empty = none.
  TORCH_ARG(std::string, pretrained) = "";
  // Stochastic depth: the largest per-block drop path probability, reached by the last block on the
  // family's schedule (training only; no effect in eval mode or on the state dict).
  TORCH_ARG(double, drop_path_rate) = 0.0;
  // Dropout probability where the family applies timm's drop_rate, usually before the classifier
  // (training only).
  TORCH_ARG(double, drop_rate) = 0.0;
};

// How timm's features_only wrapper renames a family's parameters.
enum class FeatureWrap {
  // FeatureListNet: the top-level children, in order, up to the last selected feature; children
  // listed in `flattened_children()` are replaced by their own children named "<child>_<i>".
  kModuleList,
  // FeatureGetterNet: the pruned model under "model.".
  kGetter,
  // The family's own features-only model (timm's HighResolutionNetFeatures): the backbone's children
  // under their own names.
  kOwn,
  // FeatureHookNet without rewriting: the whole model (classifier removed) under "body.".
  kHook,
};

// Base of every backbone. Submodules are registered under timm's exact names, so the full model's
// named_parameters()/named_buffers() are the keys of timm's checkpoint files.
class BackboneImpl : public torch::nn::Module {
 public:
  // The registered model name ("resnet50"), for error messages.
  const std::string& model_name() const { return model_name_; }
  // Every feature the family exposes, in order; out_indices index into this list.
  const std::vector<FeatureInfo>& feature_info() const { return feature_info_; }
  // timm's default out_indices for features_only.
  virtual std::vector<int64_t> default_out_indices() const;
  // Feature maps (NCHW) for the given ascending indices into feature_info().
  virtual std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x,
                                                           const std::vector<int64_t>& indices) = 0;
  // Class, register or distillation tokens ahead of the patch tokens (token models); 0 otherwise.
  virtual int64_t num_prefix_tokens() const { return 0; }
  // forward_intermediates that also returns each selected feature's prefix tokens [B, n, C] (timm's
  // return_prefix_tokens=True); `prefix_tokens` is left empty by models without them.
  virtual std::vector<torch::Tensor> forward_intermediates(const torch::Tensor& x, const std::vector<int64_t>& indices,
                                                           std::vector<torch::Tensor>& prefix_tokens) {
    prefix_tokens.clear();
    return forward_intermediates(x, indices);
  }
  // Classifier logits; a model built with features_only has no classifier (see check_classifier).
  virtual torch::Tensor forward(const torch::Tensor& x) = 0;

  virtual FeatureWrap feature_wrap() const { return FeatureWrap::kModuleList; }
  virtual std::vector<std::string> flattened_children() const { return {}; }
  // Name of the first convolution's weight owner (timm's pretrained_cfg["first_conv"]), used to
  // adapt 3-channel checkpoints to other in_chans.
  virtual std::string first_conv() const = 0;

 protected:
  // Families pass their registered name and creation arguments; the defaults suit a backbone built
  // outside the registry.
  explicit BackboneImpl(std::string model_name = "", const ModelArgs& args = {});

  // The guard at the top of every forward(): throws std::logic_error when the model was built with
  // features_only, which leaves out the head that forward() needs.
  void check_classifier() const;
  // timm's head on pooled features: dropout at head_drop_rate() (training only), then the classifier,
  // or no classifier when the model was built with num_classes 0 (timm's identity head).
  torch::Tensor classify(const torch::Tensor& pooled, torch::nn::Linear& classifier) const;
  // timm's default head on an NCHW map: global average pooling, then classify.
  torch::Tensor pool_and_classify(const torch::Tensor& features, torch::nn::Linear& classifier) const;
  // ModelArgs::drop_rate, for the heads whose dropout sits where classify() cannot apply it.
  double head_drop_rate() const { return head_drop_rate_; }

  std::vector<FeatureInfo> feature_info_;

 private:
  std::string model_name_;
  bool features_only_ = false;
  double head_drop_rate_ = 0.0;
};

using Backbone = std::shared_ptr<BackboneImpl>;
using Constructor = std::function<Backbone(const ModelArgs&)>;

// Registry metadata of one model name.
struct ModelEntry {
  std::string name;
  std::string family;  // source family, e.g. "resnet"
  Constructor create;
  std::vector<double> mean = {0.485, 0.456, 0.406};  // preprocessing (timm pretrained_cfg)
  std::vector<double> std = {0.229, 0.224, 0.225};
  int64_t num_classes = 1000;  // the default classifier width (timm's pretrained_cfg num_classes)
};

void register_model(ModelEntry entry);
// timm's "<model>.<pretrained tag>" names: {"resnet18", "a1_in1k"}; the tag is "" when there is none.
// timm's deprecated names give the model and tag timm maps them to, with a warning: "tv_resnet50" ->
// {"resnet50", "tv_in1k"}.
// The registry functions below accept either form.
std::pair<std::string, std::string> split_model_name_tag(const std::string& name);
// The model's pretrained tags, timm's default first; empty when the port has no record of them.
std::vector<std::string> pretrained_tags(const std::string& model);
// The hub repository holding model.safetensors for "<model>" (timm's default tag) or "<model>.<tag>":
// timm/<model>.<tag> for timm's own weights. Throws std::invalid_argument for an unknown tag, a tag
// without weights on the hub, or a model whose default tag is not known here (then give one).
std::string pretrained_repo(const std::string& name);
// pretrained_repo's model.safetensors through smp::hub::hf_hub_download: its local path.
std::string download_pretrained(const std::string& name);
// Sorted model names matching a shell-style pattern ("resnet*", "*xcit*"); empty = all.
std::vector<std::string> list_models(const std::string& pattern = "");
const ModelEntry& model_entry(const std::string& name);  // throws with close matches if unknown
bool is_model(const std::string& name);
// timm's module ("coat", "crossvit", ...) for the names timm registers but refuses to build with
// features_only, which therefore cannot be encoders; "" for every other name.
std::string module_without_features(const std::string& name);
// Every such name, as timm lists them.
std::vector<std::string> models_without_features();

// timm.create_model(name, **args) without features_only: the full classifier.
Backbone create_model(const std::string& name, const ModelArgs& args = {});

// timm.create_model(name, features_only=True, **args).
class FeaturesImpl : public torch::nn::Module {
 public:
  FeaturesImpl(Backbone backbone, std::vector<int64_t> out_indices);
  std::vector<torch::Tensor> forward(const torch::Tensor& x);
  // Also switches the backbone, which drives the forward pass but is not always a child here.
  void train(bool on = true) override;

  // The selected features, in output order.
  const std::vector<FeatureInfo>& feature_info() const { return selected_info_; }
  const std::vector<int64_t>& out_indices() const { return out_indices_; }
  BackboneImpl& backbone() { return *backbone_; }

  // The full-model key ("layer1.0.conv1.weight") of a key of this module ("stages_0.x" or
  // "model.x" forms); empty when the key is not one of this module's names.
  std::string to_base_key(const std::string& key) const;
  // This module's key for a full-model key; empty when the full-model key was pruned (classifier).
  std::string from_base_key(const std::string& base_key) const;

 private:
  Backbone backbone_;
  std::vector<int64_t> out_indices_;
  std::vector<FeatureInfo> selected_info_;
  // (this module's child name, full-model path) for every registered child.
  std::vector<std::pair<std::string, std::string>> aliases_;
  mutable std::set<std::string> own_keys_;  // filled on first use of from_base_key
};
TORCH_MODULE(Features);

// Builds the features-only model, then loads args.pretrained into it with load_checkpoint.
Features create_features(const std::string& name, const ModelArgs& args = {});

// Loads a safetensors checkpoint into an already built features-only model: either the full timm model's
// keys (its classifier and the stages the model pruned are dropped) or the model's own keys (a
// features-only checkpoint, possibly of a pruned model). A 3-channel first conv is adapted to the model's
// in_chans. Throws std::runtime_error listing the missing, unexpected and mismatched keys, and leaves the
// model unchanged, when the checkpoint does not fit (another model's, say).
void load_checkpoint(FeaturesImpl& features, const std::string& path);

}  // namespace smp::timm
