// Typed options (smp/options.h) <-> smp keyword arguments (JSON), written once for every options struct.
#pragma once

#include <smp/models.h>

#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

namespace smp::detail {

using nlohmann::json;

// Readers: throw std::invalid_argument naming the key and the expected type.
void read(const std::string& key, const json& v, int64_t& out);
void read(const std::string& key, const json& v, std::optional<int64_t>& out);  // null -> nullopt
void read(const std::string& key, const json& v, double& out);
void read(const std::string& key, const json& v, bool& out);
void read(const std::string& key, const json& v, std::string& out);  // null -> ""
void read(const std::string& key, const json& v, std::vector<int64_t>& out);
void read(const std::string& key, const json& v, EncoderIndices& out);
void read(const std::string& key, const json& v, NormSpec& out);
void read(const std::string& key, const json& v, std::optional<AuxParams>& out);

json write(int64_t v);
json write(const std::optional<int64_t>& v);
json write(double v);
json write(bool v);
json write(const std::string& v);  // "" -> null
json write(const std::vector<int64_t>& v);
json write(const EncoderIndices& v);
json write(const NormSpec& v);
json write(const std::optional<AuxParams>& v);

// Throws for keys not in `valid`, listing the valid ones (with close matches).
void check_keys(const std::string& owner, const json& kwargs, const std::vector<std::string>& valid);

// The keywords of an options struct (smp/options.h), in declaration order.
template <typename Options>
std::vector<std::string> option_names(const Options& options) {
  std::vector<std::string> names;
  Options::visit_options(options, [&](const char* name, const auto&, OptionKind) { names.emplace_back(name); });
  return names;
}

// Reads the keywords `kwargs` holds into `options` with `read(key, value, member)`, an overload set over
// the member types. `extra_keys` are keywords the caller reads itself; any other key throws, listing
// the valid ones.
template <typename Options, typename Reader>
void read_options(const std::string& owner, const json& kwargs, Options& options, const Reader& read,
                  const std::vector<std::string>& extra_keys = {}) {
  if (!kwargs.is_object()) throw std::invalid_argument(owner + ": keyword arguments must be a JSON object");
  auto names = extra_keys;
  for (auto& name : option_names(options)) names.push_back(std::move(name));
  check_keys(owner, kwargs, names);
  Options::visit_options(options, [&](const char* name, auto& member, OptionKind) {
    if (kwargs.contains(name)) read(name, kwargs.at(name), member);
  });
}

// A model's options from smp keyword arguments (config.json's init arguments).
template <typename Options>
Options options_from_json(const std::string& arch, const json& kwargs) {
  Options options;
  read_options(arch, kwargs, options, [](const std::string& key, const json& v, auto& member) { read(key, v, member); });
  return options;
}

// The keyword arguments config.json holds for `options`: every keyword smp's constructor names, and the
// **kwargs pass-throughs that differ from their defaults (smp's config holds those only when given).
template <typename Options>
json options_to_json(const Options& options) {
  json out = json::object();
  const Options defaults;
  std::vector<json> default_values;
  Options::visit_options(defaults, [&](const char*, const auto& member, OptionKind) { default_values.push_back(write(member)); });
  size_t i = 0;
  Options::visit_options(options, [&](const char* name, const auto& member, OptionKind kind) {
    auto value = write(member);
    if (kind == OptionKind::kKeyword || value != default_values[i]) out[name] = std::move(value);
    ++i;
  });
  return out;
}

// The common encoder options as EncoderOptions.
template <typename Options>
EncoderOptions encoder_options(const Options& o, int64_t output_stride) {
  return EncoderOptions()
      .name(o.encoder_name())
      .in_channels(o.in_channels())
      .depth(o.encoder_depth())
      .indices(o.encoder_indices())
      .channels(o.encoder_channels())
      .output_stride(output_stride)
      .weights(o.encoder_weights())
      .drop_path_rate(o.drop_path_rate())
      .drop_rate(o.drop_rate());
}
template <typename Options>
EncoderOptions encoder_options(const Options& o) {
  return encoder_options(o, o.output_stride());
}

// Architecture registry used by smp::create_model.
// A keyword smp renamed and still accepts, with a deprecation warning.
struct RenamedKeyword {
  std::string old_key, new_key;
};

struct ArchEntry {
  std::string name;
  std::vector<std::string> keys;  // the options' keywords, then the renamed ones' old names
  std::vector<RenamedKeyword> renamed;
  std::function<SegmentationModel(const json&)> build;
};
void register_architecture(ArchEntry entry);

// Registers architecture `name` built as Model(options read from smp keyword arguments).
template <typename Model, typename Options>
void register_architecture_of(const std::string& name, std::vector<RenamedKeyword> renamed = {}) {
  auto keys = option_names(Options());
  for (const auto& r : renamed) keys.push_back(r.old_key);
  register_architecture({name, std::move(keys), std::move(renamed), [name](const json& kwargs) -> SegmentationModel {
                           return Model(options_from_json<Options>(name, kwargs)).ptr();
                         }});
}

}  // namespace smp::detail
