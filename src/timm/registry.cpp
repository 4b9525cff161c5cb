#include <smp/io.h>
#include <smp/timm.h>

#include <mutex>

#include "timm/families.h"
#include "timm/layers/drop_path.h"
#include "timm/pretrained_tags.h"
#include "util/registry.h"
#include "util/strings.h"

namespace smp::timm {

namespace {

util::Registry<ModelEntry>& entries() {
  static util::Registry<ModelEntry> table("timm model", "Run `smp list-encoders` for the full list.");
  return table;
}

void register_all_families() {
  static std::once_flag once;
  std::call_once(once, [] {
#define SMP_TIMM_FAMILY(name) name::register_family();
#include "timm/families.def"
#undef SMP_TIMM_FAMILY
  });
}

const util::Registry<ModelEntry>& registry() {
  register_all_families();
  return entries();
}

}  // namespace

BackboneImpl::BackboneImpl(std::string model_name, const ModelArgs& args)
    : model_name_(std::move(model_name)), features_only_(args.features_only()), head_drop_rate_(args.drop_rate()) {}

void BackboneImpl::check_classifier() const {
  if (features_only_) throw std::logic_error(model_name_ + " was built with features_only and has no classifier");
}

torch::Tensor BackboneImpl::classify(const torch::Tensor& pooled, torch::nn::Linear& classifier) const {
  const auto dropped = layers::dropout(pooled, head_drop_rate_, is_training());
  return classifier ? classifier(dropped) : dropped;
}

torch::Tensor BackboneImpl::pool_and_classify(const torch::Tensor& features, torch::nn::Linear& classifier) const {
  return classify(features.mean({2, 3}), classifier);
}

std::vector<int64_t> BackboneImpl::default_out_indices() const {
  std::vector<int64_t> out(feature_info_.size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<int64_t>(i);
  return out;
}

void register_model(ModelEntry entry) {
  auto name = entry.name;
  if (const auto* previous = entries().find(name))  // two families claiming one name is a porting bug
    throw std::logic_error("timm model '" + name + "' is registered by both the " + previous->family + " and the " +
                           entry.family + " family");
  entries().add(name, std::move(entry));
}

std::vector<std::string> list_models(const std::string& pattern) {
  std::vector<std::string> out;
  for (const auto& name : registry().names())
    if (pattern.empty() || util::glob_match(pattern, name)) out.push_back(name);
  return out;
}

bool is_model(const std::string& name) { return registry().find(split_model_name_tag(name).first) != nullptr; }

const ModelEntry& model_entry(const std::string& name) {
  if (const auto module = module_without_features(name); !module.empty())
    throw std::invalid_argument("timm model '" + name + "' cannot be an encoder: timm builds " + module +
                                " models without features_only. Choose another backbone (`smp list-encoders`).");
  return registry().at(split_model_name_tag(name).first);
}

Backbone create_model(const std::string& name, const ModelArgs& args) {
  const auto& entry = model_entry(name);
  check_pretrained_tag(entry.name, split_model_name_tag(name).second);
  if (args.in_chans() < 1) throw std::invalid_argument("in_chans must be >= 1, got " + std::to_string(args.in_chans()));
  if (args.output_stride() != 8 && args.output_stride() != 16 && args.output_stride() != 32)
    throw std::invalid_argument("output_stride must be 8, 16 or 32, got " + std::to_string(args.output_stride()));
  auto resolved = args;
  if (resolved.num_classes() < 0) resolved.num_classes(entry.num_classes);
  Backbone model = entry.create(resolved);
  if (!args.pretrained().empty() && !args.features_only()) {
    auto file = io::read_safetensors(args.pretrained());
    io::load_state_dict(*model, file.tensors,
                        io::LoadOptions().first_conv_weight(model->first_conv() + ".weight"));
  }
  return model;
}

Features create_features(const std::string& name, const ModelArgs& args) {
  auto backbone_args = args;
  backbone_args.features_only(true);
  Backbone backbone = create_model(name, backbone_args);
  auto indices = args.out_indices().empty() ? backbone->default_out_indices() : args.out_indices();
  Features features(backbone, indices);
  if (!args.pretrained().empty()) load_checkpoint(*features, args.pretrained());
  return features;
}

}  // namespace smp::timm
