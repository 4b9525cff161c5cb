// Typed model options <-> smp keyword arguments (JSON), one field table per architecture.
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

template <typename Options>
struct Field {
  std::string name;
  std::function<void(Options&, const json&)> read;
  std::function<json(const Options&)> write;
  // Written to the config only when it differs from the default: smp passes such options through
  // **kwargs, so its config.json holds them only when given.
  bool only_if_set = false;
};

#define SMP_FIELD(OPTIONS, NAME)                                                              \
  ::smp::detail::Field<OPTIONS> {                                                             \
    #NAME,                                                                                    \
        [](OPTIONS& o, const ::nlohmann::json& v) {                                           \
          auto value = o.NAME();                                                              \
          ::smp::detail::read(#NAME, v, value);                                               \
          o.NAME(value);                                                                      \
        },                                                                                    \
        [](const OPTIONS& o) { return ::smp::detail::write(o.NAME()); }                       \
  }

#define SMP_KWARGS_FIELD(OPTIONS, NAME)                                                       \
  [] {                                                                                        \
    auto field = SMP_FIELD(OPTIONS, NAME);                                                    \
    field.only_if_set = true;                                                                 \
    return field;                                                                             \
  }()

#define SMP_ENCODER_FIELDS_WITHOUT_STRIDE(OPTIONS)                                            \
  SMP_FIELD(OPTIONS, encoder_name), SMP_FIELD(OPTIONS, encoder_depth), SMP_FIELD(OPTIONS, encoder_weights), \
      SMP_FIELD(OPTIONS, in_channels), SMP_FIELD(OPTIONS, classes), SMP_FIELD(OPTIONS, activation),          \
      SMP_FIELD(OPTIONS, aux_params), SMP_KWARGS_FIELD(OPTIONS, encoder_indices),                            \
      SMP_KWARGS_FIELD(OPTIONS, encoder_channels)
#define SMP_ENCODER_FIELDS(OPTIONS) \
  SMP_ENCODER_FIELDS_WITHOUT_STRIDE(OPTIONS), SMP_KWARGS_FIELD(OPTIONS, output_stride)

template <typename Options>
Options options_from_json(const std::string& arch, const std::vector<Field<Options>>& fields, const json& kwargs);

template <typename Options>
json options_to_json(const std::vector<Field<Options>>& fields, const Options& options) {
  json out = json::object();
  const Options defaults;
  for (const auto& f : fields) {
    auto value = f.write(options);
    if (!f.only_if_set || value != f.write(defaults)) out[f.name] = std::move(value);
  }
  return out;
}

// Throws for keys no field knows, listing the valid ones (with close matches).
void check_keys(const std::string& arch, const json& kwargs, const std::vector<std::string>& valid);

template <typename Options>
Options options_from_json(const std::string& arch, const std::vector<Field<Options>>& fields, const json& kwargs) {
  if (!kwargs.is_object()) throw std::invalid_argument(arch + ": keyword arguments must be a JSON object");
  std::vector<std::string> names;
  for (const auto& f : fields) names.push_back(f.name);
  check_keys(arch, kwargs, names);
  Options options;
  for (const auto& f : fields)
    if (kwargs.contains(f.name)) f.read(options, kwargs.at(f.name));
  return options;
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
      .weights(o.encoder_weights());
}
template <typename Options>
EncoderOptions encoder_options(const Options& o) {
  return encoder_options(o, o.output_stride());
}

// Architecture registry used by smp::create_model.
struct ArchEntry {
  std::string name;
  std::vector<std::string> keys;
  std::function<SegmentationModel(const json&)> build;
};
void register_architecture(ArchEntry entry);

// Registers architecture `name` built as Model(options read from kwargs by `fields`).
template <typename Model, typename Options>
void register_architecture_of(const std::string& name, const std::vector<Field<Options>>& fields) {
  std::vector<std::string> keys;
  for (const auto& f : fields) keys.push_back(f.name);
  register_architecture({name, keys, [name, &fields](const json& kwargs) -> SegmentationModel {
                           return Model(options_from_json(name, fields, kwargs)).ptr();
                         }});
}

}  // namespace smp::detail
