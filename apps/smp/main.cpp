// The `smp` command line.
#include "commands.h"
#include "util/strings.h"

#include <smp/conformance.h>
#include <smp/encoder_table.h>
#include <smp/smp.h>

#include <CLI/CLI.hpp>
#include <c10/util/Exception.h>
#include <fmt/format.h>

#include <fnmatch.h>

#include <chrono>
#include <filesystem>
#include <iostream>

namespace {

namespace fs = std::filesystem;

int run_info(const std::string& arch, const std::vector<std::string>& words, const std::string& from) {
  if (from.empty() == arch.empty()) throw std::invalid_argument("info takes an architecture or --from <folder>");
  if (!from.empty() && !words.empty()) throw std::invalid_argument("info --from takes no options: config.json has them");
  auto model = from.empty() ? smp::create_model(arch, words) : smp::from_pretrained(from);
  if (!from.empty()) std::cout << model->arch() << " " << model->config().dump() << "\n";
  const auto table = model->encoder().features_info_str();
  std::cout << (table.empty() ? "(this encoder has no features table)" : table) << "\n";
  return 0;
}

// A case the library cannot run yet fails the run unless `allow_unsupported` (a run over a fixture set
// that is ahead of the library); finding no case at all is an error, not a pass.
int run_conformance(const std::vector<std::string>& paths, const smp::conformance::RunOptions& options,
                    bool allow_unsupported) {
  int passed = 0, failed = 0, unsupported = 0;
  for (const auto& root : paths) {
    for (const auto& dir : smp::conformance::find_cases(root)) {
      for (const auto& r : smp::conformance::run_path(dir, options)) {
        const char* word = r.status == smp::conformance::Status::kPass   ? "PASS"
                           : r.status == smp::conformance::Status::kFail ? "FAIL"
                                                                         : "UNSUPPORTED";
        std::cout << fmt::format("{} {} max_rel_err={:.3g}", word, r.path, r.max_rel_error);
        if (!r.message.empty()) std::cout << "  (" << r.message << ")";
        std::cout << std::endl;
        (r.status == smp::conformance::Status::kPass ? passed
         : r.status == smp::conformance::Status::kFail ? failed
                                                       : unsupported)++;
      }
    }
  }
  std::cout << fmt::format("{} passed, {} failed, {} unsupported", passed, failed, unsupported) << std::endl;
  if (passed + failed + unsupported == 0)
    throw std::runtime_error("conformance found no case (a folder holding case.json or cases.json) under " +
                             fmt::format("{}", fmt::join(paths, ", ")) + ": check the path");
  if (unsupported && !allow_unsupported)
    std::cout << "unsupported cases fail the run; pass --allow-unsupported to report them only" << std::endl;
  return failed || (unsupported && !allow_unsupported) ? 1 : 0;
}

// One line per encoder (smp's own, then timm's) from the compiled-in table; `measure` builds each
// encoder instead (how scripts/gen-encoders-doc.sh refreshes the table). A pattern matches the name
// with or without its tu- prefix.
int run_list_encoders(const std::string& pattern, bool tsv, bool measure) {
  auto matches = [&pattern](const std::string& name) {
    const bool timm = smp::util::starts_with(name, "tu-");
    return pattern.empty() || fnmatch(pattern.c_str(), name.c_str(), 0) == 0 ||
           (timm && fnmatch(pattern.c_str(), name.c_str() + 3, 0) == 0);
  };
  auto print = [tsv](const smp::EncoderRow& row) {
    if (tsv)
      std::cout << smp::to_tsv(row) << "\n";
    else
      std::cout << fmt::format("{:<43} channels [{}]  reductions [{}]  params {:.1f}M\n", row.name,
                               fmt::join(row.channels, ", "), fmt::join(row.reductions, ", "),
                               static_cast<double>(row.parameters) / 1e6);
  };
  if (measure) {
    for (const auto& name : smp::encoder_names())
      if (matches(name)) print(smp::measure_encoder(name));
  } else {
    for (const auto& row : smp::encoder_table())
      if (matches(row.name)) print(row);
  }
  std::cout << std::flush;
  return 0;
}

struct PredictArgs {
  std::string arch, from, weights, input, output, tta = "none", dtype = "float32";
  bool eager = false;
  std::vector<std::string> words;
  smp::PredictOptions options;
};

// Exit code 0 when at least one image was segmented, 1 otherwise.
int run_predict(const PredictArgs& args) {
  if (args.from.empty() == args.arch.empty())
    throw std::invalid_argument("predict takes an architecture with its options, or --model <checkpoint folder>");
  if (!args.from.empty() && (!args.words.empty() || !args.weights.empty()))
    throw std::invalid_argument("predict --model takes no model options or --weights: the folder has them");
  if (args.from.empty() && args.weights.empty())
    throw std::invalid_argument("predict " + args.arch +
                                " has no weights to segment with: give --weights <model.safetensors>, or --model "
                                "<checkpoint folder> instead of the architecture");
  auto model = args.from.empty() ? smp::create_model(args.arch, args.words) : smp::from_pretrained(args.from);
  if (!args.weights.empty())
    model->load_state_dict(smp::io::read_safetensors(args.weights).tensors);
  auto options = args.options;
  options.flip_tta(smp::parse_flip_tta(args.tta));
  options.inference(smp::InferenceOptions().optimize(!args.eager).dtype(smp::parse_inference_dtype(args.dtype)));
  const auto report = smp::predict_files(*model, args.input, args.output, options);
  std::cout << report.summary() << std::endl;
  return report.segmented.empty() ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"smp: segmentation models with timm backbones, in C++"};
  app.require_subcommand(1);
  int threads = 0;
  std::string log_level;
  app.add_option("--threads", threads, "LibTorch threads (default: SMP_NUM_THREADS, else all cores)")
      ->check(CLI::Range(0, 1 << 20));
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off (default: SMP_LOG_LEVEL or info)");

  std::string arch;
  std::vector<std::string> words;
  auto* info = app.add_subcommand("info", "Print a model's encoder features table");
  std::string from;
  info->add_option("arch", arch, "Architecture, e.g. Unet");
  info->add_option("options", words, "key=value model options, e.g. encoder_name=tu-resnet18 encoder_depth=3");
  info->add_option("--from", from, "A folder written by save_pretrained (config.json + model.safetensors)");

  std::vector<std::string> paths;
  auto* conformance = app.add_subcommand("conformance", "Run reference fixture cases and compare");
  conformance->add_option("paths", paths, "Case folders or folders of cases")->required();
  smp::conformance::RunOptions conformance_options;
  conformance->add_flag("--inference", conformance_options.inference,
                        "Run the models through the compiled inference path (float32) instead of eagerly");
  std::string conformance_dtype = "float32";
  conformance->add_option("--dtype", conformance_dtype,
                          "bfloat16: smp model cases through the bfloat16 inference path, passing when their masks "
                          "agree with the reference on >= 99.5% of pixels")
      ->capture_default_str();
  bool allow_unsupported = false;
  conformance->add_flag("--allow-unsupported", allow_unsupported,
                        "Report cases the library cannot run yet without failing the run");

  std::string pattern;
  bool tsv = false, measure = false;
  auto* list = app.add_subcommand("list-encoders", "List encoders (smp's own and tu-<timm>) with their features");
  list->add_option("pattern", pattern, "Shell-style filter, e.g. 'resnet*'");
  list->add_flag("--tsv", tsv, "Tab-separated rows: name, family, channels, reductions, parameters");
  list->add_flag("--measure", measure, "Build each encoder and measure it instead of reading the built-in table (slow)");

  std::function<int()> run_verb;
  smp::cli::add_train_command(app, run_verb);
  smp::cli::add_eval_command(app, run_verb);
  smp::cli::add_demo_command(app, run_verb);
  smp::cli::add_bench_command(app, run_verb);

  PredictArgs pa;
  auto* predict = app.add_subcommand(
      "predict", "Segment an image or a folder of images: writes <stem>_mask.png (class indices) and <stem>_overlay.png");
  predict->add_option("arch", pa.arch, "Architecture, e.g. Unet (or give --model)");
  predict->add_option("--model", pa.from, "A checkpoint folder (save_pretrained, smp train's best/ or last/)");
  predict->add_option("options", pa.words, "key=value model options, e.g. encoder_name=tu-resnet18 classes=3");
  predict->add_option("--weights", pa.weights, "A .safetensors state dict for the model (loaded strictly)");
  predict->add_option("--input", pa.input, "An image file or a folder of images")->required();
  predict->add_option("--output", pa.output, "Output folder (created; must not be the input folder)")->required();
  int64_t tile = pa.options.tile_size(), overlap = pa.options.overlap(), max_direct = pa.options.max_direct_pixels(),
          batch = pa.options.batch_size();
  predict->add_option("--tile", tile, "Tile side in pixels for large images; 0 = never tile")->capture_default_str();
  predict->add_option("--overlap", overlap, "Pixels shared by neighbouring tiles")->capture_default_str();
  predict->add_option("--max-direct-pixels", max_direct, "Images with at most this many pixels are not tiled")
      ->capture_default_str();
  predict->add_option("--batch-size", batch, "Tiles per forward pass")->capture_default_str();
  predict->add_option("--tta", pa.tta, "Flip test-time augmentation: none, h or hv")->capture_default_str();
  predict->add_option("--dtype", pa.dtype, "Inference precision: float32 or bfloat16")->capture_default_str();
  predict->add_flag("--eager", pa.eager, "Run the plain eager forward instead of the compiled inference path");

  CLI11_PARSE(app, argc, argv);
  pa.options.tile_size(tile).overlap(overlap).max_direct_pixels(max_direct).batch_size(batch);
  try {
    if (!log_level.empty()) smp::log::set_level(log_level);
    smp::configure_threads(threads);
    if (*info) return run_info(arch, words, from);
    if (*conformance) {
      conformance_options.dtype = smp::parse_inference_dtype(conformance_dtype);
      if (conformance_options.dtype != torch::kFloat && !smp::cpu_supports_bfloat16())
        throw std::runtime_error("conformance --dtype bfloat16 needs a CPU with AVX-512 BF16; this one has none");
      return run_conformance(paths, conformance_options, allow_unsupported);
    }
    if (*list) return run_list_encoders(pattern, tsv, measure);
    if (*predict) return run_predict(pa);
    if (run_verb) return run_verb();
  } catch (const c10::Error& e) {  // LibTorch's message without its stack trace
    std::cerr << "error: " << e.what_without_backtrace() << std::endl;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << std::endl;
    return 2;
  }
  return 0;
}
