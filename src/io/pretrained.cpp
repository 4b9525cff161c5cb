// save_pretrained / from_pretrained: the folder layout of smp's hub mixin (huggingface_hub's
// PyTorchModelHubMixin): config.json with the constructor's keyword arguments plus "_model_class",
// the state dict in model.safetensors and a model card in README.md.
#include <fmt/format.h>
#include <smp/hub.h>
#include <smp/io.h>
#include <smp/pretrained.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>

#include "util/files.h"
#include "util/log.h"
#include "util/strings.h"

namespace smp {

namespace detail {
struct PretrainedAccess {
  static nlohmann::json& config(SegmentationModelImpl& model) { return model.config_; }
};
}  // namespace detail

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kConfigName = "config.json";
constexpr const char* kSafetensorsName = "model.safetensors";
constexpr const char* kTorchName = "pytorch_model.bin";  // what older huggingface_hub versions wrote
constexpr const char* kCardName = "README.md";

json read_config(const fs::path& file) {
  std::ifstream in(file);
  if (!in) throw std::runtime_error(file.string() + ": cannot open file");
  json config;
  try {
    config = json::parse(in);
  } catch (const json::exception& e) {
    throw std::runtime_error(file.string() + ": invalid JSON (" + e.what() + ")");
  }
  if (!config.is_object()) throw std::runtime_error(file.string() + ": not a JSON object of keyword arguments");
  if (!config.contains("_model_class") || !config["_model_class"].is_string())
    throw std::runtime_error(file.string() +
                             ": no \"_model_class\" naming the architecture (not a folder written by smp's "
                             "save_pretrained)");
  return config;
}

// The model card: hub metadata (front matter) naming smp as the library, so the hub offers smp's loading
// snippet, then what the folder holds. Unknown dataset or metrics are said to be unknown rather than left out,
// so a reader knows they were not recorded.
std::string model_card(const std::string& arch, const json& kwargs, const std::string& directory,
                       const std::string& dataset, const std::map<std::string, double>& metrics) {
  const std::string encoder = kwargs.contains("encoder_name") && kwargs["encoder_name"].is_string()
                                  ? kwargs["encoder_name"].get<std::string>()
                                  : "unknown";
  // A JSON string literal is also a valid Python and C++ string literal.
  const auto quoted_dir = json(directory).dump(-1, ' ', /*ensure_ascii=*/true);
  std::string card = fmt::format(
      "---\n"
      "library_name: segmentation-models-pytorch\n"
      "pipeline_tag: image-segmentation\n"
      "tags:\n"
      "- semantic-segmentation\n"
      "- pytorch\n"
      "- segmentation-models-pytorch\n"
      "---\n\n"
      "# {arch} with a {encoder} encoder\n\n"
      "- Architecture: {arch}\n"
      "- Encoder: {encoder}\n"
      "- Dataset: {dataset}\n\n"
      "Saved by smp-cpp in the folder layout of segmentation_models_pytorch: `config.json` holds the "
      "constructor's keyword arguments and the architecture (`_model_class`), `model.safetensors` the weights.\n\n"
      "## Loading\n\n"
      "Python:\n\n"
      "```python\n"
      "import segmentation_models_pytorch as smp\n\n"
      "model = smp.from_pretrained({dir})\n"
      "```\n\n"
      "C++:\n\n"
      "```cpp\n"
      "auto model = smp::from_pretrained({dir});\n"
      "```\n\n"
      "## Keyword arguments\n\n"
      "```json\n"
      "{kwargs}\n"
      "```\n\n"
      "## Metrics\n\n",
      fmt::arg("arch", arch), fmt::arg("encoder", encoder), fmt::arg("dir", quoted_dir),
      fmt::arg("dataset", dataset.empty() ? "not recorded" : dataset),
      fmt::arg("kwargs", kwargs.dump(2, ' ', /*ensure_ascii=*/false)));
  if (metrics.empty()) {
    card += "Not recorded.\n";
  } else {
    card += "| Metric | Value |\n|---|---|\n";
    for (const auto& [name, value] : metrics) card += fmt::format("| {} | {} |\n", name, value);
  }
  return card;
}

}  // namespace

void SegmentationModelImpl::save_pretrained(const std::string& directory, const std::string& dataset,
                                            const std::map<std::string, double>& metrics) const {
  json config = config_;
  config["_model_class"] = arch_;
  // Python's json.dumps(config, sort_keys=True, indent=2): nlohmann's objects are already sorted by key,
  // and ensure_ascii escapes non-ASCII text as Python's default does.
  const auto config_text = config.dump(2, ' ', /*ensure_ascii=*/true);
  const auto weights = io::serialize_safetensors(io::state_dict(*this), {{"format", "pt"}});
  const fs::path dir(directory);
  fs::create_directories(dir);
  util::PendingFile weights_file((dir / kSafetensorsName).string(), weights);
  util::PendingFile config_file((dir / kConfigName).string(), config_text);
  const auto card_path = dir / kCardName;
  std::optional<util::PendingFile> card_file;
  if (!fs::exists(card_path))
    card_file.emplace(card_path.string(), model_card(arch_, config_, directory, dataset, metrics));
  weights_file.commit();
  config_file.commit();
  if (card_file) card_file->commit();
}

namespace {

// "org/name" as the hub spells model ids: two non-empty parts of letters, digits, '-', '_' and '.'.
bool is_hub_id(const std::string& s) {
  const auto slash = s.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == s.size() || s.find('/', slash + 1) != std::string::npos ||
      s[0] == '.')
    return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '/';
  });
}

// The snapshot folder of `id` in the hub cache, holding config.json and the weights.
fs::path download_model(const std::string& id) {
  const fs::path config = hub::hf_hub_download(id, kConfigName);
  try {
    hub::hf_hub_download(id, kSafetensorsName);
  } catch (const hub::HubError& e) {
    if (e.status() != 404) throw;
    hub::hf_hub_download(id, kTorchName);
  }
  return config.parent_path();
}

// Overridden keywords may change the heads (classes, aux_params): their tensors that the checkpoint
// lacks or holds in another shape keep the model's fresh values.
void keep_new_heads(torch::nn::Module& model, io::TensorMap& tensors, const std::string& file) {
  std::vector<std::string> kept;
  auto keep = [&](const std::string& key, const torch::Tensor& value) {
    if (!util::starts_with(key, "segmentation_head.") && !util::starts_with(key, "classification_head.")) return;
    const auto it = tensors.find(key);
    if (it != tensors.end() && it->second.sizes() == value.sizes()) return;
    tensors[key] = value.detach().clone();
    kept.push_back(key);
  };
  for (const auto& p : model.named_parameters()) keep(p.key(), p.value());
  for (const auto& b : model.named_buffers()) keep(b.key(), b.value());
  if (!kept.empty())
    log::logger().warn("{}: the overridden options change the heads; newly initialised: {}", file, util::join(kept, ", "));
}

}  // namespace

SegmentationModel from_pretrained(const std::string& path_or_id, bool strict) {
  return from_pretrained(path_or_id, json::object(), strict);
}

SegmentationModel from_pretrained(const std::string& path_or_id, const json& overrides, bool strict) {
  if (!overrides.is_object())
    throw std::invalid_argument("from_pretrained: overrides must be a JSON object of keyword arguments, got " +
                                overrides.dump());
  fs::path dir(path_or_id);
  if (!fs::exists(dir) && is_hub_id(path_or_id)) {
    try {
      dir = download_model(path_or_id);
    } catch (const hub::HubError& e) {
      throw std::runtime_error(path_or_id + " is no local folder, and as a Hugging Face Hub model id: " + e.what());
    }
  }
  const std::string path = dir.string();
  const auto config_path = dir / kConfigName;
  if (!fs::is_directory(dir) || !fs::exists(config_path))
    throw std::runtime_error(path_or_id + ": not a folder with " + kConfigName +
                             " (a folder written by save_pretrained, or a Hugging Face Hub model id such as "
                             "smp-hub/unet-resnet34)");
  const auto config = read_config(config_path);
  const auto arch = config["_model_class"].get<std::string>();

  // smp's models drop keyword arguments starting with "_" (supports_config_loading).
  json kwargs = json::object();
  for (const auto& [key, value] : config.items())
    if (key.empty() || key[0] != '_') kwargs[key] = value;
  // The checkpoint replaces the encoder's weights, so they are not fetched (smp downloads them first).
  const bool has_encoder_weights = kwargs.contains("encoder_weights");
  if (has_encoder_weights) kwargs["encoder_weights"] = nullptr;
  for (const auto& [key, value] : overrides.items()) kwargs[key] = value;

  SegmentationModel model;
  try {
    model = create_model_from_kwargs(arch, kwargs);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(config_path.string() + ": " + e.what());
  }
  if (has_encoder_weights) detail::PretrainedAccess::config(*model)["encoder_weights"] = config["encoder_weights"];

  io::TensorMap tensors;
  fs::path weights_path = dir / kSafetensorsName;
  if (fs::exists(weights_path)) {
    tensors = io::read_safetensors(weights_path.string()).tensors;
  } else if (fs::exists(dir / kTorchName)) {
    weights_path = dir / kTorchName;
    tensors = io::read_torch_state_dict(weights_path.string());
  } else {
    throw std::runtime_error(path + ": no " + kSafetensorsName + " (or " + kTorchName + ") beside " + kConfigName);
  }
  if (!overrides.empty()) keep_new_heads(*model, tensors, weights_path.string());
  try {
    const auto report = model->load_state_dict(tensors, strict);
    if (!report.ok())
      log::logger().warn("{}: loaded into {} with strict=false; skipped:{}", weights_path.string(), arch,
                         report.describe());
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(weights_path.string() + " (" + arch + " from " + kConfigName + "): " + e.what());
  }
  model->eval();
  return model;
}

}  // namespace smp
