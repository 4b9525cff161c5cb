// The conformance runner: rebuilds reference fixture cases (shared/fixtures layout) and compares.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

namespace smp::conformance {

enum class Status { kPass, kFail, kUnsupported };

struct CaseResult {
  Status status = Status::kFail;
  std::string path;
  double max_rel_error = 0.0;  // worst over the case's tensors
  std::string message;         // why it failed / what is unsupported
};

struct RunOptions {
  // Run models through the compiled inference path (smp/inference.h, float32) instead of eagerly.
  bool inference = false;
  // With kBFloat16 (implies `inference`): smp model cases run in bfloat16 and pass when their masks
  // (argmax over classes, the sign for one class) agree with the reference's on at least
  // kBfloat16MaskAgreement of the pixels; other kinds of case fail.
  at::ScalarType dtype = at::kFloat;
};
constexpr double kBfloat16MaskAgreement = 0.995;

// Runs one case folder (timm_features, smp_model, smp_checkpoint, smp_loss, smp_metric) or one
// features_info folder (cases.json; one result per table).
std::vector<CaseResult> run_path(const std::string& path, const RunOptions& options = {});
// Walks `root` for case folders (those holding case.json or cases.json) in sorted order.
std::vector<std::string> find_cases(const std::string& root);

// The README's pass rule: max|got - expected| / max(max|expected|, 1e-12).
double relative_error(const at::Tensor& got, const at::Tensor& expected);

}  // namespace smp::conformance
