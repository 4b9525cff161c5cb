// One registration function per backbone family; the registry calls each once.
#pragma once

#include <smp/timm.h>

#include <cstddef>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace smp::timm {

// Registers one model name per (name, configuration) pair, each built as Impl(name, config, args);
// `describe` fills what differs from the entry defaults (preprocessing, default num_classes).
template <typename Impl, typename Config, typename Describe = std::nullptr_t>
void register_configs(const std::string& family, const std::vector<std::pair<std::string, Config>>& models,
                      Describe describe = nullptr) {
  for (const auto& [name, cfg] : models) {
    ModelEntry entry;
    entry.name = name;
    entry.family = family;
    if constexpr (!std::is_same_v<Describe, std::nullptr_t>) describe(entry, cfg);
    entry.create = [name = name, cfg = cfg](const ModelArgs& args) -> Backbone {
      return std::make_shared<Impl>(name, cfg, args);
    };
    register_model(std::move(entry));
  }
}

// (one declaration per family)
void register_xcit_family();
void register_resnet_family();
void register_efficientformer_family();
void register_convnext_family();
void register_regnet_family();
void register_efficientnet_family();
void register_mobilenetv3_family();
void register_vgg_family();
void register_densenet_family();
void register_dla_family();
void register_hrnet_family();
void register_vision_transformer_family();
void register_metaformer_family();
void register_mambaout_family();
void register_swin_transformer_family();
void register_eva_family();
void register_levit_family();
void register_byobnet_family();
void register_fastvit_family();

}  // namespace smp::timm
