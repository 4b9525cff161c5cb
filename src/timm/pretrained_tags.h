// timm's pretrained tags of the registered models (generated table, see scripts/gen-pretrained-tags.py).
#pragma once

#include <string>
#include <vector>

namespace smp::timm {

struct PretrainedTagRow {
  const char* model;
  const char* tags;  // space-separated, timm's default first; "tag", "tag=org/name" or "tag!"
};

const std::vector<PretrainedTagRow>& pretrained_tag_rows();

// timm's deprecated model names and what timm's create_model maps each to ("<model>.<tag>").
struct DeprecatedModelRow {
  const char* name;
  const char* current;
};
const std::vector<DeprecatedModelRow>& deprecated_model_rows();

// timm's create_model check: a tag the model does not have is refused (unknown tag lists pass).
void check_pretrained_tag(const std::string& model, const std::string& tag);

}  // namespace smp::timm
