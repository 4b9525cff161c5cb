// Runners of the individual case kinds; run_path() dispatches on case.json's "kind".
#pragma once

#include <smp/conformance.h>

#include <nlohmann/json.hpp>

#include <map>
#include <string>

#include <smp/io.h>

namespace smp::conformance {

CaseResult run_timm_case(const std::string& dir, const nlohmann::json& spec);
CaseResult run_smp_model_case(const std::string& dir, const nlohmann::json& spec);
// A save_pretrained folder (config.json + model.safetensors) loaded as-is, run on the filled input.
CaseResult run_smp_checkpoint_case(const std::string& dir, const nlohmann::json& spec);
CaseResult run_loss_case(const std::string& dir, const nlohmann::json& spec);
CaseResult run_metric_case(const std::string& dir, const nlohmann::json& spec);

// Compares every expected tensor with `got` (same names) under rtol; the worst error and the first
// problem go into `result`, whose status becomes kPass or kFail.
void compare_tensors(const io::TensorMap& got, const io::TensorMap& expected, double rtol, CaseResult& result);

}  // namespace smp::conformance
