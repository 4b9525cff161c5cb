// Helpers shared by the test files.
#pragma once

#include <smp/timm.h>
#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

namespace smp::test {

// State-dict keys of a module, sorted.
std::vector<std::string> keys(const torch::nn::Module& module);
bool has_prefix(const std::vector<std::string>& keys, const std::string& prefix);
// The message of the exception `fn` throws, or "(no error)".
std::string error_of(const std::function<void()>& fn);
std::vector<int64_t> reductions(const smp::timm::FeaturesImpl& features);
// For every {model name: logits} in tests/data/<file>: builds the classifier with num_classes = the
// logits' width, fills it with smp-fill-v1, runs the filled "input" of `input_shape` and compares.
void expect_classifier_logits(const std::string& file, std::vector<int64_t> input_shape = {2, 3, 64, 96},
                              double rtol = 1e-4);

}  // namespace smp::test
