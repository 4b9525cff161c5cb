// The timm models whose builders refuse features_only (timm 1.0: coat, convit, convmixer, crossvit,
// visformer). They are not ported: no encoder can be made of them, and naming one says so.
#include <smp/timm.h>

#include <string>
#include <utility>
#include <vector>

namespace smp::timm {

namespace {

const std::vector<std::pair<std::string, std::vector<std::string>>>& refused_by_module() {
  static const std::vector<std::pair<std::string, std::vector<std::string>>> table = {
      {"coat",
       {"coat_lite_medium", "coat_lite_medium_384", "coat_lite_mini", "coat_lite_small", "coat_lite_tiny",
        "coat_mini", "coat_small", "coat_tiny"}},
      {"convit", {"convit_base", "convit_small", "convit_tiny"}},
      {"convmixer", {"convmixer_768_32", "convmixer_1024_20_ks9_p14", "convmixer_1536_20"}},
      {"crossvit",
       {"crossvit_9_240", "crossvit_9_dagger_240", "crossvit_15_240", "crossvit_15_dagger_240",
        "crossvit_15_dagger_408", "crossvit_18_240", "crossvit_18_dagger_240", "crossvit_18_dagger_408",
        "crossvit_base_240", "crossvit_small_240", "crossvit_tiny_240"}},
      {"visformer", {"visformer_small", "visformer_tiny"}},
  };
  return table;
}

}  // namespace

std::string module_without_features(const std::string& name) {
  const auto model = split_model_name_tag(name).first;
  for (const auto& [module, names] : refused_by_module())
    for (const auto& n : names)
      if (n == model) return module;
  return "";
}

std::vector<std::string> models_without_features() {
  std::vector<std::string> out;
  for (const auto& [module, names] : refused_by_module()) out.insert(out.end(), names.begin(), names.end());
  return out;
}

}  // namespace smp::timm
