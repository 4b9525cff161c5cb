// smp::losses::create_loss: losses by smp's class name from keyword arguments.
#include <fmt/format.h>
#include <smp/losses.h>
#include <smp/models.h>

#include <functional>
#include <stdexcept>

#include "models/options_json.h"
#include "util/registry.h"
#include "util/strings.h"

namespace smp::losses {

namespace {

using nlohmann::json;

[[noreturn]] void bad(const std::string& key, const json& v, const std::string& expected) {
  throw std::invalid_argument("option '" + key + "' expects " + expected + ", got " + v.dump());
}

// Readers for the option types; null reads as smp's None where the option may be None.
void read_value(const std::string& key, const json& v, int64_t& out) { detail::read(key, v, out); }
void read_value(const std::string& key, const json& v, double& out) { detail::read(key, v, out); }
void read_value(const std::string& key, const json& v, bool& out) { detail::read(key, v, out); }

// The losses' one string keyword besides `mode` is `reduction`, where null is smp's None: no reduction.
void read_value(const std::string& key, const json& v, std::string& out) {
  if (v.is_null() && key == "reduction") {
    out = "none";
    return;
  }
  if (!v.is_string()) bad(key, v, "a string");
  out = v.get<std::string>();
}

void read_value(const std::string& key, const json& v, std::vector<int64_t>& out) {
  if (!v.is_array()) bad(key, v, "a list of integers");
  detail::read(key, v, out);
}

void read_value(const std::string& key, const json& v, std::vector<double>& out) {
  if (!v.is_array()) bad(key, v, "a list of numbers");
  out.clear();
  for (const auto& e : v) {
    if (!e.is_number()) bad(key, v, "a list of numbers");
    out.push_back(e.get<double>());
  }
}

// A number or (nested) list of numbers as a float32 tensor; null = undefined.
void read_value(const std::string& key, const json& v, torch::Tensor& out) {
  if (v.is_null()) {
    out = torch::Tensor();
    return;
  }
  std::vector<int64_t> shape;
  for (const json* level = &v; level->is_array(); level = &level->front()) {
    shape.push_back(static_cast<int64_t>(level->size()));
    if (level->empty()) break;
  }
  std::vector<float> values;
  const std::function<void(const json&, size_t)> walk = [&](const json& node, size_t depth) {
    if (depth == shape.size()) {
      if (!node.is_number()) bad(key, v, "a number or a (nested) list of numbers");
      values.push_back(node.get<float>());
      return;
    }
    if (!node.is_array() || static_cast<int64_t>(node.size()) != shape[depth])
      bad(key, v, "a number or a rectangular (nested) list of numbers");
    for (const auto& e : node) walk(e, depth + 1);
  };
  walk(v, 0);
  out = torch::tensor(values, torch::kFloat).reshape(shape);
}

// Declared after the plain readers, which it uses.
template <typename T>
void read_value(const std::string& key, const json& v, std::optional<T>& out) {
  if (v.is_null()) {
    out.reset();
    return;
  }
  T value{};
  read_value(key, v, value);
  out = value;
}

const auto read_member = [](const std::string& key, const json& v, auto& member) { read_value(key, v, member); };

// Losses whose options are built from the required `mode`.
template <typename Impl, typename O>
Loss build_with_mode(const std::string& cls, const json& kwargs) {
  O options{std::string()};
  detail::read_options(cls, kwargs, options, read_member, {"mode"});
  if (!kwargs.contains("mode"))
    throw std::invalid_argument(cls + ": missing required option 'mode' (binary, multiclass or multilabel)");
  std::string mode;
  read_value("mode", kwargs.at("mode"), mode);
  options.mode(mode);
  return std::make_shared<Impl>(options);
}

template <typename Impl, typename O>
Loss build(const std::string& cls, const json& kwargs) {
  O options;
  detail::read_options(cls, kwargs, options, read_member);
  return std::make_shared<Impl>(options);
}

Loss build_combined(const json& kwargs) {
  detail::check_keys("CombinedLoss", kwargs, {"losses"});
  if (!kwargs.contains("losses") || !kwargs.at("losses").is_array() || kwargs.at("losses").empty())
    throw std::invalid_argument(
        "CombinedLoss expects 'losses': a non-empty list of {\"class\": ..., \"options\": {...}, \"weight\": w}");
  std::vector<std::pair<Loss, double>> terms;
  for (const auto& term : kwargs.at("losses")) {
    if (!term.is_object() || !term.contains("class") || !term.at("class").is_string())
      throw std::invalid_argument("CombinedLoss: each entry of 'losses' needs a \"class\" name, got " + term.dump());
    detail::check_keys("CombinedLoss entry", term, {"class", "options", "weight"});
    double weight = 1.0;
    if (term.contains("weight")) read_value("weight", term.at("weight"), weight);
    terms.emplace_back(create_loss(term.at("class").get<std::string>(), term.value("options", json::object())), weight);
  }
  return std::make_shared<CombinedLossImpl>(std::move(terms));
}

struct LossEntry {
  std::vector<std::string> keys;
  std::function<Loss(const json&)> build;
};

// A loss built from its keywords; the "with mode" losses also take smp's `mode` keyword.
template <typename Impl, typename O>
void add_loss(util::Registry<LossEntry>& r, const std::string& name) {
  r.add(name, {detail::option_names(O()), [name](const json& kw) { return build<Impl, O>(name, kw); }});
}
template <typename Impl, typename O>
void add_loss_with_mode(util::Registry<LossEntry>& r, const std::string& name) {
  auto keys = detail::option_names(O(std::string()));
  keys.insert(keys.begin(), "mode");
  r.add(name, {keys, [name](const json& kw) { return build_with_mode<Impl, O>(name, kw); }});
}

const util::Registry<LossEntry>& registry() {
  static const util::Registry<LossEntry> entries = [] {
    util::Registry<LossEntry> r("loss");
    add_loss_with_mode<JaccardLossImpl, JaccardLossOptions>(r, "JaccardLoss");
    add_loss_with_mode<DiceLossImpl, DiceLossOptions>(r, "DiceLoss");
    add_loss_with_mode<FocalLossImpl, FocalLossOptions>(r, "FocalLoss");
    add_loss_with_mode<LovaszLossImpl, LovaszLossOptions>(r, "LovaszLoss");
    add_loss<SoftBCEWithLogitsLossImpl, SoftBCEWithLogitsLossOptions>(r, "SoftBCEWithLogitsLoss");
    add_loss<SoftCrossEntropyLossImpl, SoftCrossEntropyLossOptions>(r, "SoftCrossEntropyLoss");
    add_loss_with_mode<TverskyLossImpl, TverskyLossOptions>(r, "TverskyLoss");
    add_loss<MCCLossImpl, MCCLossOptions>(r, "MCCLoss");
    r.add("CombinedLoss", {{"losses"}, build_combined});
    return r;
  }();
  return entries;
}

const LossEntry& entry(const std::string& class_name) { return registry().at(class_name); }

}  // namespace

Loss create_loss(const std::string& class_name, const json& options) {
  const auto& e = entry(class_name);
  if (!options.is_object() && !options.is_null())
    throw std::invalid_argument(class_name + ": options must be a JSON object, got " + options.dump());
  return e.build(options.is_null() ? json::object() : options);
}

Loss create_loss(const std::string& class_name, const std::vector<std::string>& words) {
  return create_loss(class_name, parse_words(words));
}

std::vector<std::string> list_losses() { return registry().names(); }

std::vector<std::string> loss_option_names(const std::string& class_name) { return entry(class_name).keys; }

}  // namespace smp::losses
