#include <smp/conformance.h>
#include <smp/inference.h>
#include <smp/fill.h>
#include <smp/io.h>
#include <smp/log.h>
#include <smp/models.h>
#include <smp/pretrained.h>
#include <smp/timm.h>

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "conformance/kinds.h"
#include "inference/compiled_module.h"
#include "util/cpu_allocator.h"
#include "util/strings.h"

namespace smp::conformance {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

json read_json(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path.string() + ": cannot open");
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw std::runtime_error(path.string() + ": invalid JSON (" + e.what() + ")");
  }
}

std::vector<int64_t> shape_of(const json& j) { return j.get<std::vector<int64_t>>(); }

// Every entry of `expected` ({name, shape}) must exist in `got` with that shape, and nothing else.
std::string check_names(const io::TensorMap& got, const json& expected, const std::string& what) {
  std::set<std::string> wanted;
  for (const auto& e : expected) {
    const auto name = e["name"].get<std::string>();
    wanted.insert(name);
    auto it = got.find(name);
    if (it == got.end()) return fmt::format("{}: missing key {}", what, name);
    if (it->second.sizes().vec() != shape_of(e["shape"]))
      return fmt::format("{}: {} has shape {} but the reference has {}", what, name, fmt::join(it->second.sizes(), "x"),
                         fmt::join(shape_of(e["shape"]), "x"));
  }
  for (const auto& [name, t] : got)
    if (!wanted.count(name)) return fmt::format("{}: extra key {}", what, name);
  return "";
}

torch::Tensor filled_input(const json& spec) {
  return fill::input(spec["input"]["name"].get<std::string>(), shape_of(spec["input"]["shape"]));
}

bool encoder_is_ported(const std::string& name) {
  if (util::starts_with(name, "tu-")) return timm::is_model(name.substr(3));
  const auto native = list_smp_encoders();
  return std::find(native.begin(), native.end(), name) != native.end();
}

CaseResult unsupported(const std::string& why) {
  CaseResult r;
  r.status = Status::kUnsupported;
  r.message = why;
  return r;
}

CaseResult fail(const std::string& why) {
  CaseResult r;
  r.status = Status::kFail;
  r.message = why;
  return r;
}

std::vector<CaseResult> run_features_info(const fs::path& dir) {
  std::vector<CaseResult> results;
  for (const auto& c : read_json(dir / "cases.json")) {
    CaseResult r;
    r.path = (dir / c["name"].get<std::string>()).string();
    try {
      auto args = c["args"].get<std::vector<std::string>>();
      const std::string arch = args.front();
      args.erase(args.begin());
      std::ifstream in(dir / c["expected"].get<std::string>());
      std::stringstream expected;
      expected << in.rdbuf();
      log::Capture capture;
      auto model = create_model(arch, args);
      const auto got = model->encoder().features_info_str() + "\n";
      std::vector<std::pair<std::string, std::string>> want;
      for (const auto& line : c["log"]) want.emplace_back(line[0].get<std::string>(), line[1].get<std::string>());
      if (got != expected.str()) {
        r.message = "features_info_str differs from " + c["expected"].get<std::string>() + ":\n" + got;
      } else if (capture.lines() != want) {
        r.message = "log lines differ:";
        for (const auto& [level, msg] : capture.lines()) r.message += "\n  " + level + ": " + msg;
      } else {
        r.status = Status::kPass;
      }
    } catch (const std::exception& e) {
      r.message = e.what();
    }
    results.push_back(r);
  }
  return results;
}

}  // namespace

double relative_error(const at::Tensor& got, const at::Tensor& expected) {
  auto g = got.to(torch::kFloat64), e = expected.to(torch::kFloat64);
  const double scale = std::max(e.numel() ? e.abs().max().item<double>() : 0.0, 1e-12);
  return g.numel() ? (g - e).abs().max().item<double>() / scale : 0.0;
}

void compare_tensors(const io::TensorMap& got, const io::TensorMap& expected, double rtol, CaseResult& result) {
  result.status = Status::kPass;
  for (const auto& [name, want] : expected) {
    auto it = got.find(name);
    if (it == got.end()) {
      result.status = Status::kFail;
      result.message = "no output named " + name;
      return;
    }
    if (it->second.sizes() != want.sizes()) {
      result.status = Status::kFail;
      result.message = fmt::format("{}: shape {} vs expected {}", name, fmt::join(it->second.sizes(), "x"),
                                   fmt::join(want.sizes(), "x"));
      return;
    }
    if (!want.is_floating_point()) {
      if (!torch::equal(it->second.to(want.scalar_type()), want)) {
        result.status = Status::kFail;
        result.message = name + ": integer values differ";
      }
      continue;
    }
    const double err = relative_error(it->second, want);
    if (!(err <= rtol) && result.status == Status::kPass) {  // NaN fails too
      result.status = Status::kFail;
      result.message = fmt::format("{}: max relative error {:.3g} > rtol {:.3g}", name, err, rtol);
    }
    result.max_rel_error = std::max(result.max_rel_error, std::isnan(err) ? INFINITY : err);
  }
}

// The decisions a prediction makes: the class per pixel (or per image for labels), the sign for one class.
at::Tensor decisions(const at::Tensor& t) { return t.size(1) == 1 ? (t > 0).squeeze(1) : t.argmax(1); }

// bfloat16 runs: each tensor's decisions agree with the reference's on enough of the pixels.
void compare_decisions(const io::TensorMap& got, const io::TensorMap& expected, CaseResult& result) {
  result.status = Status::kPass;
  for (const auto& [name, want] : expected) {
    auto it = got.find(name);
    if (it == got.end() || it->second.sizes() != want.sizes()) {
      result.status = Status::kFail;
      result.message = name + ": missing or of another shape";
      return;
    }
    const double agree = (decisions(it->second) == decisions(want)).to(at::kDouble).mean().item<double>();
    result.message += fmt::format("{}{} decisions agree on {:.4f}", result.message.empty() ? "" : ", ", name, agree);
    if (!(agree >= kBfloat16MaskAgreement)) result.status = Status::kFail;
    result.max_rel_error = std::max(result.max_rel_error, relative_error(it->second, want));
  }
}

// A model case's outputs against expected.safetensors: within rtol, or in bfloat16 by their decisions.
CaseResult compare_model_outputs(const SegmentationOutput& out, const std::string& dir, const json& spec,
                                 const RunOptions& options) {
  io::TensorMap got{{"mask", out.mask}};
  if (out.label.defined()) got["label"] = out.label;
  const auto expected = io::read_safetensors((fs::path(dir) / "expected.safetensors").string()).tensors;
  CaseResult r;
  if (options.dtype == at::kBFloat16)
    compare_decisions(got, expected, r);
  else
    compare_tensors(got, expected, spec["rtol"].get<double>(), r);
  return r;
}

// The model's outputs for `input`, eagerly or through the inference path.
SegmentationOutput run_model(const SegmentationModel& model, const torch::Tensor& input, const RunOptions& options) {
  torch::NoGradGuard no_grad;
  if (!options.inference && options.dtype == at::kFloat) return model->forward_all(input);
  auto compiled = optimize_for_inference(model, InferenceOptions().dtype(options.dtype));
  auto out = compiled->forward_all(input);
  // A model the compiler could not take runs eagerly: right, but not what this run checks.
  if (const auto how = compiled->describe(input); how.rfind("eager", 0) == 0)
    throw std::runtime_error("not compiled: " + how);
  return out;
}

CaseResult run_timm_case(const std::string& dir, const json& spec, const RunOptions& options) {
  const auto name = spec["model"].get<std::string>();
  if (!timm::is_model(name)) return unsupported("timm model '" + name + "' is not ported yet");
  timm::ModelArgs args;
  const auto& kw = spec["kwargs"];
  if (kw.contains("in_chans")) args.in_chans(kw["in_chans"].get<int64_t>());
  if (kw.contains("output_stride")) args.output_stride(kw["output_stride"].get<int64_t>());
  if (kw.contains("out_indices")) args.out_indices(kw["out_indices"].get<std::vector<int64_t>>());
  // Transformer backbones here always accept other input sizes (timm's dynamic_img_size=True /
  // strict_img_size=False behaviour), so those flags need no counterpart.
  const std::set<std::string> known = {"in_chans", "output_stride", "out_indices", "dynamic_img_size",
                                       "strict_img_size"};
  for (const auto& [key, value] : kw.items())
    if (!known.count(key) || (key == "dynamic_img_size" && !value.get<bool>()) ||
        (key == "strict_img_size" && value.get<bool>()))
      return unsupported("timm kwarg '" + key + "'");

  auto features = timm::create_features(name, args);
  features->eval();
  const timm::FeaturesImpl& f = *features;
  fill::fill_module(*features, [&f](const std::string& key) { return f.to_base_key(key); });

  const auto own = io::state_dict(*features);
  if (auto problem = check_names(own, spec["state_dict"], "features-only state_dict"); !problem.empty())
    return fail(problem);
  for (const auto& e : spec["state_dict"])
    if (features->to_base_key(e["name"].get<std::string>()) != e["base"].get<std::string>())
      return fail(fmt::format("{} maps to base key '{}', reference: '{}'", e["name"].get<std::string>(),
                              features->to_base_key(e["name"].get<std::string>()), e["base"].get<std::string>()));
  auto full = timm::create_model(name, args);
  if (auto problem = check_names(io::state_dict(*full), spec["base_state_dict"], "full-model state_dict");
      !problem.empty())
    return fail(problem);
  const auto& info = features->feature_info();
  if (info.size() != spec["feature_info"].size()) return fail("feature_info has a different length");
  for (size_t i = 0; i < info.size(); ++i) {
    const auto& e = spec["feature_info"][i];
    if (info[i].module != e["module"].get<std::string>() || info[i].num_chs != e["num_chs"].get<int64_t>() ||
        info[i].reduction != e["reduction"].get<int64_t>())
      return fail(fmt::format("feature_info[{}] is ({}, {}, {}), reference ({}, {}, {})", i, info[i].module,
                              info[i].num_chs, info[i].reduction, e["module"].get<std::string>(),
                              e["num_chs"].get<int64_t>(), e["reduction"].get<int64_t>()));
  }

  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> outputs;
  if (options.inference) {
    detail::ensure_cpu_allocator();
    inference::CompiledModule compiled(*features, [&features](const at::Tensor& x) { return features->forward(x); },
                                       at::kFloat, 1);
    outputs = compiled.run(filled_input(spec));
  } else {
    outputs = features->forward(filled_input(spec));
  }
  io::TensorMap got;
  for (size_t i = 0; i < outputs.size(); ++i) got["feature." + std::to_string(i)] = outputs[i];
  CaseResult r;
  compare_tensors(got, io::read_safetensors((fs::path(dir) / "expected.safetensors").string()).tensors,
                  spec["rtol"].get<double>(), r);
  return r;
}

CaseResult run_smp_model_case(const std::string& dir, const json& spec, const RunOptions& options) {
  const auto arch = spec["arch"].get<std::string>();
  const auto archs = list_architectures();
  if (std::find(archs.begin(), archs.end(), arch) == archs.end())
    return unsupported("architecture " + arch + " is not ported yet");
  const auto encoder = spec["kwargs"].value("encoder_name", std::string("resnet34"));
  if (!encoder_is_ported(encoder)) return unsupported("encoder " + encoder + " is not ported yet");

  auto model = create_model_from_kwargs(arch, spec["kwargs"]);
  model->eval();
  fill::fill_module(*model);
  if (auto problem = check_names(io::state_dict(*model), spec["state_dict"], "state_dict"); !problem.empty())
    return fail(problem);
  return compare_model_outputs(run_model(model, filled_input(spec), options), dir, spec, options);
}

CaseResult run_smp_checkpoint_case(const std::string& dir, const json& spec, const RunOptions& options) {
  const auto config = read_json(fs::path(dir) / "config.json");
  const auto arch = config.value("_model_class", std::string());
  const auto archs = list_architectures();
  if (std::find(archs.begin(), archs.end(), arch) == archs.end())
    return unsupported("architecture " + arch + " is not built");
  const auto encoder = config.value("encoder_name", std::string("resnet34"));
  if (!encoder_is_ported(encoder)) return unsupported("encoder " + encoder + " is not ported yet");

  // The folder as saved, weights included: nothing is filled.
  auto model = from_pretrained(dir);
  return compare_model_outputs(run_model(model, filled_input(spec), options), dir, spec, options);
}

std::vector<std::string> find_cases(const std::string& root) {
  const auto is_case = [](const fs::path& dir) {
    return fs::is_regular_file(dir / "case.json") || fs::is_regular_file(dir / "cases.json");
  };
  if (is_case(root)) return {root};
  if (!fs::is_directory(root)) throw std::runtime_error(root + ": not a case folder or a directory of cases");
  // Linked folders are followed (a folder of links to cases is a way to pick a set); each real folder
  // is read once, so a link back up the tree cannot loop.
  std::vector<std::string> out;
  std::set<fs::path> seen;
  std::vector<fs::path> pending{root};
  while (!pending.empty()) {
    const fs::path dir = pending.back();
    pending.pop_back();
    if (!seen.insert(fs::canonical(dir)).second) continue;
    if (is_case(dir)) {
      out.push_back(dir.string());
      continue;
    }
    for (const auto& entry : fs::directory_iterator(dir))
      if (entry.is_directory()) pending.push_back(entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<CaseResult> run_path(const std::string& path, const RunOptions& options) {
  const fs::path dir(path);
  if (fs::exists(dir / "cases.json"))
    return options.dtype == at::kFloat ? run_features_info(dir)
                                       : std::vector<CaseResult>{fail("bfloat16 runs check smp model and checkpoint cases only")};
  CaseResult r;
  try {
    const auto spec = read_json(dir / "case.json");
    const auto kind = spec.value("kind", std::string());
    if (options.dtype != at::kFloat && kind != "smp_model" && kind != "smp_checkpoint") {
      r = fail("bfloat16 runs check smp model and checkpoint cases only");
    } else if (kind == "timm_features") {
      r = run_timm_case(path, spec, options);
    } else if (kind == "smp_model") {
      r = run_smp_model_case(path, spec, options);
    } else if (kind == "smp_checkpoint") {
      r = run_smp_checkpoint_case(path, spec, options);
    } else if (kind == "smp_loss") {
      r = run_loss_case(path, spec);
    } else if (kind == "smp_metric") {
      r = run_metric_case(path, spec);
    } else {
      r = unsupported("case kind '" + kind + "'");
    }
  } catch (const std::exception& e) {
    r = fail(e.what());
  }
  r.path = path;
  return {r};
}

}  // namespace smp::conformance
