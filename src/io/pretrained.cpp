// save_pretrained / from_pretrained: the folder layout of smp's hub mixin (huggingface_hub's
// PyTorchModelHubMixin): config.json with the constructor's keyword arguments plus "_model_class",
// and the state dict in model.safetensors.
#include <smp/io.h>
#include <smp/pretrained.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "util/files.h"
#include "util/log.h"

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

}  // namespace

void SegmentationModelImpl::save_pretrained(const std::string& directory) const {
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
  weights_file.commit();
  config_file.commit();
}

SegmentationModel from_pretrained(const std::string& path, bool strict) {
  const fs::path dir(path);
  const auto config_path = dir / kConfigName;
  if (!fs::is_directory(dir) || !fs::exists(config_path))
    throw std::runtime_error(path + ": not a folder with " + kConfigName +
                             " (only local folders written by save_pretrained are read; download a Hugging Face "
                             "Hub repository first, e.g. huggingface-cli download <repo> --local-dir <folder>)");
  const auto config = read_config(config_path);
  const auto arch = config["_model_class"].get<std::string>();

  // smp's models drop keyword arguments starting with "_" (supports_config_loading).
  json kwargs = json::object();
  for (const auto& [key, value] : config.items())
    if (key.empty() || key[0] != '_') kwargs[key] = value;
  // The checkpoint replaces the encoder's weights, so they are not fetched (smp downloads them first).
  const bool has_encoder_weights = kwargs.contains("encoder_weights");
  if (has_encoder_weights) kwargs["encoder_weights"] = nullptr;

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
  try {
    const auto report = io::load_state_dict(*model, tensors, io::LoadOptions().strict(strict));
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
