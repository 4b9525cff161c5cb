#include <smp/models.h>

#include <mutex>

#include "models/architectures.h"
#include "models/options_json.h"
#include "util/log.h"
#include "util/registry.h"
#include "util/strings.h"

namespace smp {

namespace detail {

namespace {
util::Registry<ArchEntry>& arch_table() {
  static util::Registry<ArchEntry> table("architecture");
  return table;
}

const util::Registry<ArchEntry>& architectures() {
  static std::once_flag once;
  std::call_once(once, [] {
#define SMP_ARCHITECTURE(name) register_##name();
#include "models/architectures.def"
#undef SMP_ARCHITECTURE
  });
  return arch_table();
}

const ArchEntry& arch_entry(const std::string& arch) {
  const auto& table = architectures();
  // smp's class names are case-sensitive; accept any case, as a user typing on a command line would.
  for (const auto& [name, entry] : table.entries())
    if (util::to_lower(name) == util::to_lower(arch)) return entry;
  return table.at(arch);
}
}  // namespace

void register_architecture(ArchEntry entry) {
  auto name = entry.name;
  arch_table().add(name, std::move(entry));
}

}  // namespace detail

std::vector<std::string> list_architectures() { return detail::architectures().names(); }

std::vector<std::string> architecture_keys(const std::string& arch) { return detail::arch_entry(arch).keys; }

SegmentationModel create_model_from_kwargs(const std::string& arch, const nlohmann::json& kwargs) {
  const auto& entry = detail::arch_entry(arch);
  // A non-null old keyword wins, as in smp's constructors (configs saved by older smp versions carry
  // the old names).
  auto args = kwargs;
  for (const auto& r : entry.renamed) {
    if (!args.is_object() || !args.contains(r.old_key)) continue;
    const auto value = args[r.old_key];
    args.erase(r.old_key);
    if (value.is_null()) continue;
    log::logger().warn("The usage of {} is deprecated. Please modify your code for {}", r.old_key, r.new_key);
    args[r.new_key] = value;
  }
  return entry.build(args);
}

SegmentationModel create_model(const std::string& arch, const std::vector<std::string>& words) {
  return create_model_from_kwargs(arch, parse_words(words));
}

nlohmann::json parse_words(const std::vector<std::string>& words) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& word : words) {
    const auto eq = word.find('=');
    if (eq == std::string::npos || eq == 0)
      throw std::invalid_argument("expected key=value, got '" + word + "'");
    const auto key = word.substr(0, eq);
    const auto text = word.substr(eq + 1);
    nlohmann::json value;
    if (text == "None") {
      value = nullptr;
    } else if (text == "True" || text == "False") {
      value = text == "True";
    } else {
      // Python literals inside lists/dicts too: None/True/False and single quotes.
      std::string js = text;
      for (auto [from, to] : {std::pair<std::string, std::string>{"None", "null"}, {"True", "true"}, {"False", "false"}})
        for (size_t p = js.find(from); p != std::string::npos; p = js.find(from, p + to.size()))
          if ((p == 0 || !std::isalnum(static_cast<unsigned char>(js[p - 1]))) &&
              (p + from.size() == js.size() || !std::isalnum(static_cast<unsigned char>(js[p + from.size()]))))
            js.replace(p, from.size(), to);
      if (!js.empty() && (js.front() == '[' || js.front() == '{')) std::replace(js.begin(), js.end(), '\'', '"');
      value = nlohmann::json::parse(js, nullptr, /*allow_exceptions=*/false);
      if (value.is_discarded()) {
        if (!js.empty() && (js.front() == '[' || js.front() == '{'))
          throw std::invalid_argument("option '" + key + "': cannot read '" + text + "' as a list or object");
        value = text;  // a bare word
      }
    }
    out[key] = value;
  }
  return out;
}

}  // namespace smp
