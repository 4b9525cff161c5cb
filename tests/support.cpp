#include "support.h"

#include <gtest/gtest.h>
#include <smp/conformance.h>
#include <smp/fill.h>
#include <smp/io.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <sstream>

namespace smp::test {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

size_t family_size(const std::string& family) {
  size_t n = 0;
  for (const auto& name : smp::timm::list_models()) n += smp::timm::model_entry(name).family == family ? 1 : 0;
  return n;
}

smp::SegmentationModel small_unet() {
  return smp::Unet(smp::UnetOptions().encoder_name("tu-resnet18").encoder_depth(3).decoder_channels({32, 16, 8}).classes(2))
      .ptr();
}

TempDir::TempDir() {
  static std::atomic<int> counter{0};
  path = std::filesystem::temp_directory_path() /
         ("smp_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  std::filesystem::create_directories(path);
}

TempDir::~TempDir() { std::filesystem::remove_all(path); }

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> keys(const torch::nn::Module& module) {
  std::vector<std::string> out;
  for (const auto& [k, v] : smp::io::state_dict(module)) out.push_back(k);
  return out;
}

bool has_prefix(const std::vector<std::string>& ks, const std::string& prefix) {
  return std::any_of(ks.begin(), ks.end(), [&](const std::string& k) { return k.rfind(prefix, 0) == 0; });
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

std::vector<int64_t> reductions(const smp::timm::FeaturesImpl& features) {
  std::vector<int64_t> out;
  for (const auto& info : features.feature_info()) out.push_back(info.reduction);
  return out;
}

void expect_features_match_full(smp::timm::FeaturesImpl& features, const std::string& model,
                                std::vector<int64_t> input_shape) {
  torch::NoGradGuard no_grad;
  auto full = smp::timm::create_model(model);
  smp::fill::fill_module(*full);
  const auto& f = features;
  smp::fill::fill_module(features, [&f](const std::string& k) { return f.to_base_key(k); });
  full->eval();
  features.eval();
  auto x = smp::fill::input("input", input_shape);
  auto got = features.forward(x);
  auto want = full->forward_intermediates(x, features.out_indices());
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_TRUE(torch::allclose(got[i], want[i])) << model << " feature " << i;
}

void expect_classifier_logits(const std::string& file, std::vector<int64_t> input_shape, double rtol) {
  torch::NoGradGuard no_grad;
  auto expected = smp::io::read_safetensors(std::string(SMP_TEST_DATA) + "/" + file);
  ASSERT_FALSE(expected.tensors.empty()) << file;
  auto x = smp::fill::input("input", input_shape);
  for (const auto& [name, want] : expected.tensors) {
    auto model = smp::timm::create_model(name, smp::timm::ModelArgs().num_classes(want.size(1)));
    smp::fill::fill_module(*model);
    model->eval();
    auto got = model->forward(x);
    ASSERT_EQ(got.sizes(), want.sizes()) << name;
    EXPECT_LT(smp::conformance::relative_error(got, want), rtol) << name;
  }
}

double relative_max_error(const torch::Tensor& got, const torch::Tensor& want) {
  return (got - want).abs().max().item<double>() / want.abs().max().item<double>();
}

}  // namespace smp::test
