#include "models/options_json.h"

#include "util/strings.h"

namespace smp::detail {

namespace {
[[noreturn]] void bad(const std::string& key, const json& v, const std::string& expected) {
  throw std::invalid_argument("option '" + key + "' expects " + expected + ", got " + v.dump());
}
}  // namespace

void read(const std::string& key, const json& v, int64_t& out) {
  if (!v.is_number_integer()) bad(key, v, "an integer");
  out = v.get<int64_t>();
}

void read(const std::string& key, const json& v, std::optional<int64_t>& out) {
  if (v.is_null()) {
    out.reset();
    return;
  }
  if (!v.is_number_integer()) bad(key, v, "an integer or null");
  out = v.get<int64_t>();
}

void read(const std::string& key, const json& v, double& out) {
  if (!v.is_number()) bad(key, v, "a number");
  out = v.get<double>();
}

void read(const std::string& key, const json& v, bool& out) {
  if (!v.is_boolean()) bad(key, v, "true or false");
  out = v.get<bool>();
}

void read(const std::string& key, const json& v, std::string& out) {
  if (v.is_null()) {
    out.clear();
  } else if (v.is_string()) {
    out = v.get<std::string>();
  } else {
    bad(key, v, "a string or null");
  }
}

void read(const std::string& key, const json& v, std::vector<int64_t>& out) {
  if (v.is_null()) {
    out.clear();
    return;
  }
  if (!v.is_array()) bad(key, v, "a list of integers");
  out.clear();
  for (const auto& e : v) {
    if (!e.is_number_integer()) bad(key, v, "a list of integers");
    out.push_back(e.get<int64_t>());
  }
}

void read(const std::string& key, const json& v, EncoderIndices& out) {
  if (v.is_null()) {
    out = EncoderIndices();
  } else if (v.is_string() && (v == "first" || v == "last")) {
    out = EncoderIndices(v.get<std::string>());
  } else if (v.is_array()) {
    std::vector<int64_t> list;
    read(key, v, list);
    out = EncoderIndices(list);
  } else {
    bad(key, v, "\"first\", \"last\" or a list of feature indices");
  }
}

void read(const std::string& key, const json& v, NormSpec& out) {
  if (v.is_boolean()) {
    out = NormSpec(v.get<bool>());
  } else if (v.is_string()) {
    out = NormSpec(v.get<std::string>());
  } else if (v.is_object() && v.contains("type") && v["type"].is_string()) {
    out = NormSpec(v["type"].get<std::string>());
    for (const auto& [k, p] : v.items()) {
      if (k == "type") continue;
      if (p.is_boolean()) out.params[k] = p.get<bool>() ? 1.0 : 0.0;
      else if (p.is_number()) out.params[k] = p.get<double>();
      else bad(key + "." + k, p, "a number or boolean");
    }
  } else {
    bad(key, v, "true/false, a norm name or {\"type\": name, ...}");
  }
}

void read(const std::string& key, const json& v, std::optional<AuxParams>& out) {
  if (v.is_null()) {
    out.reset();
    return;
  }
  if (!v.is_object()) bad(key, v, "null or an object like {\"classes\": 4, \"dropout\": 0.5}");
  check_keys(key, v, {"classes", "pooling", "dropout", "activation"});
  AuxParams aux;
  if (v.contains("classes")) {
    int64_t c = 0;
    read(key + ".classes", v["classes"], c);
    aux.classes(c);
  }
  if (v.contains("pooling")) {
    std::string p;
    read(key + ".pooling", v["pooling"], p);
    aux.pooling(p);
  }
  if (v.contains("dropout")) {
    double d = 0;
    if (!v["dropout"].is_null()) read(key + ".dropout", v["dropout"], d);
    aux.dropout(d);
  }
  if (v.contains("activation")) {
    std::string a;
    read(key + ".activation", v["activation"], a);
    aux.activation(a);
  }
  out = aux;
}

json write(int64_t v) { return v; }
json write(const std::optional<int64_t>& v) { return v ? json(*v) : json(nullptr); }
json write(double v) { return v; }
json write(bool v) { return v; }
json write(const std::string& v) { return v.empty() ? json(nullptr) : json(v); }
json write(const std::vector<int64_t>& v) { return v.empty() ? json(nullptr) : json(v); }
json write(const EncoderIndices& v) { return v.mode == "list" ? json(v.list) : json(v.mode); }

json write(const NormSpec& v) {
  if (v.params.empty()) return v.type;
  json out = {{"type", v.type}};
  for (const auto& [k, p] : v.params) out[k] = p;
  return out;
}

json write(const std::optional<AuxParams>& v) {
  if (!v) return nullptr;
  return {{"classes", v->classes()},
          {"pooling", v->pooling()},
          {"dropout", v->dropout()},
          {"activation", write(v->activation())}};
}

void check_keys(const std::string& arch, const json& kwargs, const std::vector<std::string>& valid) {
  for (const auto& [key, value] : kwargs.items()) {
    if (std::find(valid.begin(), valid.end(), key) != valid.end()) continue;
    throw std::invalid_argument("Unknown option '" + key + "' for " + arch + "." + util::did_you_mean(key, valid) +
                                " Valid options: " + util::join(valid, ", "));
  }
}

}  // namespace smp::detail
