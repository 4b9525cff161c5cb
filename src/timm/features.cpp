#include <smp/io.h>
#include <smp/timm.h>

#include "timm/layers/helpers.h"
#include "util/strings.h"

namespace smp::timm {

namespace {
// True when `path` is `prefix` or lies below it in the module tree.
bool under(const std::string& path, const std::string& prefix) {
  return prefix.empty() || path == prefix || util::starts_with(path, prefix + ".");
}

// The modules a dotted key lies in, outermost first: "a.b.c" -> "a", "a.b".
std::vector<std::string> enclosing_modules(const std::string& key) {
  std::vector<std::string> out;
  for (auto dot = key.find('.'); dot != std::string::npos; dot = key.find('.', dot + 1))
    out.push_back(key.substr(0, dot));
  return out;
}
}  // namespace

FeaturesImpl::FeaturesImpl(Backbone backbone, std::vector<int64_t> out_indices)
    : backbone_(std::move(backbone)), out_indices_(std::move(out_indices)) {
  const auto& info = backbone_->feature_info();
  const auto n = static_cast<int64_t>(info.size());
  if (out_indices_.empty()) throw std::invalid_argument("out_indices must not be empty");
  for (auto& i : out_indices_) i = layers::feature_index(i, n, backbone_->model_name());
  for (size_t k = 1; k < out_indices_.size(); ++k)
    if (out_indices_[k] <= out_indices_[k - 1])
      throw std::invalid_argument("out_indices must be strictly increasing");
  for (auto i : out_indices_) selected_info_.push_back(info[static_cast<size_t>(i)]);

  if (backbone_->feature_wrap() == FeatureWrap::kGetter || backbone_->feature_wrap() == FeatureWrap::kHook) {
    const std::string prefix = backbone_->feature_wrap() == FeatureWrap::kGetter ? "model" : "body";
    register_module(prefix, backbone_);
    aliases_.emplace_back(prefix, "");
    return;
  }
  if (backbone_->feature_wrap() == FeatureWrap::kOwn) {
    for (const auto& item : backbone_->named_children()) {
      register_module(item.key(), item.value());
      aliases_.emplace_back(item.key(), item.key());
    }
    return;
  }
  // FeatureListNet: keep children up to the one that produces the last selected feature.
  const std::string last = selected_info_.back().module;
  const auto flattened = backbone_->flattened_children();
  auto keep = [&](const std::string& alias, const std::string& path, std::shared_ptr<torch::nn::Module> child) {
    register_module(alias, std::move(child));
    aliases_.emplace_back(alias, path);
    return under(last, path);  // true: this child is the last one needed
  };
  for (const auto& item : backbone_->named_children()) {
    const auto& name = item.key();
    if (std::find(flattened.begin(), flattened.end(), name) != flattened.end()) {
      for (const auto& sub : item.value()->named_children())
        if (keep(name + "_" + sub.key(), name + "." + sub.key(), sub.value())) return;
    } else if (keep(name, name, item.value())) {
      return;
    }
  }
  throw std::logic_error("feature module '" + last + "' is not a child of the backbone");
}

std::vector<torch::Tensor> FeaturesImpl::forward(const torch::Tensor& x) {
  return backbone_->forward_intermediates(x, out_indices_);
}

void FeaturesImpl::train(bool on) {
  torch::nn::Module::train(on);
  backbone_->train(on);
}

std::string FeaturesImpl::to_base_key(const std::string& key) const {
  for (const auto& [alias, path] : aliases_) {
    if (!under(key, alias)) continue;
    std::string rest = key.substr(alias.size());  // "" or ".param"
    if (path.empty()) return rest.empty() ? rest : rest.substr(1);
    return path + rest;
  }
  return "";
}

std::string FeaturesImpl::from_base_key(const std::string& base_key) const {
  if (own_keys_.empty()) {
    for (const auto& p : named_parameters()) own_keys_.insert(p.key());
    for (const auto& b : named_buffers()) own_keys_.insert(b.key());
  }
  for (const auto& [alias, path] : aliases_) {
    if (!under(base_key, path)) continue;
    auto key = path.empty() ? alias + "." + base_key : alias + base_key.substr(path.size());
    return own_keys_.count(key) ? key : "";
  }
  return "";
}

void load_checkpoint(FeaturesImpl& features, const std::string& path) {
  const auto file = io::read_safetensors(path);
  const auto own = io::state_dict(features);
  // A full timm checkpoint also holds what features_only leaves out: the classifier and the stages after
  // the last selected feature. Rather than build the full model to list those keys, a key the model lacks
  // is dropped unless it lies inside a module the model built whole, which refuses a checkpoint of another
  // model (resnet34's layer1.2 in resnet18). Built whole (under full-model names): every module holding the
  // model's tensors except the root and the containers of the last selected feature, which pruning cuts short.
  std::set<std::string> whole_modules;
  for (const auto& entry : own)
    for (auto& module : enclosing_modules(features.to_base_key(entry.first))) whole_modules.insert(std::move(module));
  for (const auto& module : enclosing_modules(features.feature_info().back().module)) whole_modules.erase(module);
  const auto in_whole_module = [&whole_modules](const std::string& key) {
    for (const auto& module : enclosing_modules(key))
      if (whole_modules.count(module)) return true;
    return false;
  };
  io::load_state_dict(features, file.tensors,
                      io::LoadOptions()
                          .rename([&own, &features, &in_whole_module](const std::string& key) {
                            if (own.count(key)) return key;
                            auto mapped = features.from_base_key(key);
                            if (!mapped.empty() || !in_whole_module(key)) return mapped;
                            return key;
                          })
                          .first_conv_weight(features.from_base_key(features.backbone().first_conv() + ".weight")));
}

}  // namespace smp::timm
