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

// Each family file src/timm/models/<name>.cpp keeps its blocks in namespace <name> (so the family
// files can share one unity translation unit) and defines <name>::register_family(); families.def
// lists them (the one line a new family adds).
#define SMP_TIMM_FAMILY(name) \
  namespace name {            \
  void register_family();     \
  }
#include "timm/families.def"
#undef SMP_TIMM_FAMILY

}  // namespace smp::timm
