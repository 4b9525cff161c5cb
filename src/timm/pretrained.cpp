// Pretrained weights by name: timm's "<model>.<tag>" resolved to a hub repository and downloaded.
#include <smp/hub.h>
#include <smp/timm.h>

#include <fmt/format.h>

#include <mutex>
#include <set>
#include <sstream>

#include "timm/pretrained_tags.h"
#include "util/log.h"
#include "util/strings.h"

namespace smp::timm {

namespace {

struct TagInfo {
  std::string tag;
  std::string repo;  // empty: no weights on the hub
};

const std::map<std::string, std::vector<TagInfo>>& tag_table() {
  static const auto table = [] {
    std::map<std::string, std::vector<TagInfo>> t;
    for (const auto& row : pretrained_tag_rows()) {
      auto& tags = t[row.model];
      std::istringstream words(row.tags);
      for (std::string word; words >> word;) {
        if (word.back() == '!')
          tags.push_back({word.substr(0, word.size() - 1), ""});
        else if (const auto eq = word.find('='); eq != std::string::npos)
          tags.push_back({word.substr(0, eq), word.substr(eq + 1)});
        else
          tags.push_back({word, "timm/" + std::string(row.model) + "." + word});
      }
    }
    return t;
  }();
  return table;
}

std::string tag_list(const std::vector<TagInfo>& tags, bool only_on_hub) {
  std::vector<std::string> names;
  for (const auto& t : tags)
    if (!t.tag.empty() && (!only_on_hub || !t.repo.empty())) names.push_back(t.tag);
  return util::join(names, ", ");
}

const TagInfo& find_tag(const std::string& model, const std::vector<TagInfo>& tags, const std::string& tag) {
  for (const auto& t : tags)
    if (t.tag == tag) return t;
  throw std::invalid_argument(
      fmt::format("Invalid pretrained tag ({}) for {}. Its tags are: {}", tag, model, tag_list(tags, false)));
}

}  // namespace

std::pair<std::string, std::string> split_model_name_tag(const std::string& name) {
  static const auto deprecated = [] {
    std::map<std::string, std::string> m;
    for (const auto& row : deprecated_model_rows()) m.emplace(row.name, row.current);
    return m;
  }();
  if (const auto it = deprecated.find(name); it != deprecated.end()) {
    static std::mutex mutex;
    static std::set<std::string> warned;
    std::lock_guard<std::mutex> lock(mutex);
    if (warned.insert(name).second)
      log::logger().warn("Mapping deprecated model name {} to current {}.", name, it->second);
    return split_model_name_tag(it->second);
  }
  const auto dot = name.find('.');
  if (dot == std::string::npos) return {name, ""};
  return {name.substr(0, dot), name.substr(dot + 1)};
}

std::vector<std::string> pretrained_tags(const std::string& model) {
  std::vector<std::string> out;
  auto it = tag_table().find(split_model_name_tag(model).first);
  if (it != tag_table().end())
    for (const auto& t : it->second) out.push_back(t.tag);
  return out;
}

void check_pretrained_tag(const std::string& model, const std::string& tag) {
  auto it = tag_table().find(model);
  if (!tag.empty() && it != tag_table().end()) find_tag(model, it->second, tag);
}

std::string pretrained_repo(const std::string& name) {
  const auto [model, tag] = split_model_name_tag(name);
  model_entry(model);  // unknown names fail with close matches
  auto it = tag_table().find(model);
  if (it == tag_table().end() || it->second.empty()) {
    if (tag.empty())
      throw std::invalid_argument(fmt::format(
          "The default pretrained tag of timm model '{}' is not known here: name the weights explicitly, as "
          "'{}.<tag>' (the repositories timm/{}.<tag> on the hub)",
          model, model, model));
    return "timm/" + model + "." + tag;
  }
  const auto& info = tag.empty() ? it->second.front() : find_tag(model, it->second, tag);
  if (info.repo.empty()) {
    const auto others = tag_list(it->second, true);
    throw std::invalid_argument(fmt::format(
        "No pretrained weights exist for {} on the hub. Use no weights for random init{}",
        info.tag.empty() ? model : model + "." + info.tag,
        others.empty() ? std::string() : fmt::format(", or one of the tags with weights: {}", others)));
  }
  return info.repo;
}

std::string download_pretrained(const std::string& name) {
  return hub::hf_hub_download(pretrained_repo(name), "model.safetensors");
}

}  // namespace smp::timm
