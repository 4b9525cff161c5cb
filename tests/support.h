// Helpers shared by the test files.
#pragma once

#include <smp/models.h>
#include <smp/timm.h>
#include <torch/torch.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace smp::test {

// A fresh folder under the system's temporary directory, removed with its contents at scope exit.
struct TempDir {
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return (path / name).string(); }
  std::filesystem::path path;
};
// A file's whole content.
std::string read_text(const std::filesystem::path& path);

bool contains(const std::string& text, const std::string& part);
// The number of timm names registered for a family.
size_t family_size(const std::string& family);
// A small two-class Unet on tu-resnet18 (depth 3), quick to build and run.
smp::SegmentationModel small_unet();

// State-dict keys of a module, sorted.
std::vector<std::string> keys(const torch::nn::Module& module);
bool has_prefix(const std::vector<std::string>& keys, const std::string& prefix);
// Largest absolute difference relative to the largest magnitude of `want`.
double relative_max_error(const torch::Tensor& got, const torch::Tensor& want);
// The message of the exception `fn` throws, or "(no error)".
std::string error_of(const std::function<void()>& fn);
std::vector<int64_t> reductions(const smp::timm::FeaturesImpl& features);
// For every {model name: logits} in tests/data/<file>: builds the classifier with num_classes = the
// logits' width, fills it with smp-fill-v1, runs the filled "input" of `input_shape` and compares.
// A features-only model (with the given out_indices, already built as `features`) filled with
// smp-fill-v1 by its base names gives the same maps as the full model's forward_intermediates.
void expect_features_match_full(smp::timm::FeaturesImpl& features, const std::string& model,
                                std::vector<int64_t> input_shape = {1, 3, 48, 64});
void expect_classifier_logits(const std::string& file, std::vector<int64_t> input_shape = {2, 3, 64, 96},
                              double rtol = 1e-4);

}  // namespace smp::test
