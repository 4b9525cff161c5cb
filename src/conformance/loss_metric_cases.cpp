// Conformance cases of kind smp_loss and smp_metric: inputs and expected values are all in
// expected.safetensors, case.json says how to build the loss / call get_stats.
#include <smp/losses.h>
#include <smp/metrics.h>

#include <filesystem>

#include "conformance/kinds.h"

namespace smp::conformance {

namespace {

io::TensorMap read_expected(const std::string& dir) {
  return io::read_safetensors((std::filesystem::path(dir) / "expected.safetensors").string()).tensors;
}

const torch::Tensor& need(const io::TensorMap& tensors, const std::string& name) {
  auto it = tensors.find(name);
  if (it == tensors.end()) throw std::runtime_error("expected.safetensors has no tensor '" + name + "'");
  return it->second;
}

template <typename T>
std::optional<T> optional_field(const nlohmann::json& spec, const std::string& key) {
  if (!spec.contains(key) || spec.at(key).is_null()) return std::nullopt;
  return spec.at(key).get<T>();
}

}  // namespace

CaseResult run_loss_case(const std::string& dir, const nlohmann::json& spec) {
  const auto expected = read_expected(dir);
  auto loss_fn =
      losses::create_loss(spec.at("class").get<std::string>(), spec.value("options", nlohmann::json::object()));
  const auto y_pred = need(expected, "y_pred").clone().requires_grad_(true);
  const auto& y_true = need(expected, "y_true");
  const auto loss = loss_fn->forward(y_pred, y_true);
  loss.backward();
  io::TensorMap got{
      {"y_pred", y_pred.detach()}, {"y_true", y_true}, {"loss", loss.detach().reshape(-1)}, {"grad", y_pred.grad()}};
  CaseResult r;
  compare_tensors(got, expected, spec.at("rtol").get<double>(), r);
  return r;
}

CaseResult run_metric_case(const std::string& dir, const nlohmann::json& spec) {
  const auto expected = read_expected(dir);
  const auto& output = need(expected, "output");
  const auto& target = need(expected, "target");
  const auto stats =
      metrics::get_stats(output, target, spec.at("mode").get<std::string>(), optional_field<double>(spec, "threshold"),
                         optional_field<int64_t>(spec, "ignore_index"), optional_field<int64_t>(spec, "num_classes"));
  io::TensorMap got{{"output", output}, {"target", target}, {"tp", stats.tp},
                    {"fp", stats.fp},   {"fn", stats.fn},   {"tn", stats.tn}};

  metrics::MetricOptions options;
  const auto& zd = spec.at("zero_division");
  options.zero_division(zd.is_string() && zd.get<std::string>() == "warn" ? metrics::ZeroDivision::warn()
                                                                          : metrics::ZeroDivision(zd.get<double>()));
  // The generator's weights for the weighted reduction: 0.1, 0.2, 0.3, 0.4 cut to the class count.
  const std::vector<double> all_weights = {0.1, 0.2, 0.3, 0.4};
  const auto num_classes = static_cast<size_t>(stats.tp.size(1));
  if (num_classes > all_weights.size()) throw std::runtime_error("metric case with more than 4 classes");
  const std::vector<double> weights(all_weights.begin(),
                                    all_weights.begin() + static_cast<std::ptrdiff_t>(num_classes));

  // Every expected "<metric>/<reduction>" tensor is computed; a name we do not know fails below.
  for (const auto& [name, tensor] : expected) {
    const auto slash = name.find('/');
    if (slash == std::string::npos) continue;
    const auto reduction = name.substr(slash + 1);
    options.reduction(reduction);
    options.class_weights(reduction == "weighted" ? std::optional<std::vector<double>>(weights) : std::nullopt);
    got[name] = metrics::compute_metric(name.substr(0, slash), stats, options).reshape(-1).to(torch::kFloat64);
  }
  CaseResult r;
  compare_tensors(got, expected, spec.at("rtol").get<double>(), r);
  return r;
}

}  // namespace smp::conformance
