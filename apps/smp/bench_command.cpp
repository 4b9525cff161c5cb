// `smp bench`: forward latency of a model with random weights, through the inference path or eagerly.
#include "commands.h"

#include <smp/inference.h>
#include <smp/smp.h>

#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <iostream>

namespace smp::cli {

void add_bench_command(CLI::App& app, std::function<int()>& run) {
  auto* cmd = app.add_subcommand("bench", "Time a model's forward pass (random weights): median and minimum ms, "
                                          "images/s and peak resident memory");
  struct Args {
    std::string arch, dtype = "float32";
    std::vector<std::string> words;
    int64_t size = 512, batch = 1, repeat = 10, warmup = 2;
    int threads = 0;
    bool eager = false;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("arch", args->arch, "Architecture, e.g. Unet")->required();
  cmd->add_option("options", args->words, "key=value model options, e.g. encoder_name=tu-resnet18");
  cmd->add_option("--size", args->size, "Input height and width")->capture_default_str();
  cmd->add_option("--batch", args->batch, "Images per forward pass")->capture_default_str();
  cmd->add_option("--threads", args->threads, "LibTorch threads (default: SMP_NUM_THREADS, else all cores)");
  cmd->add_option("--dtype", args->dtype, "float32 or bfloat16")->capture_default_str();
  cmd->add_option("--repeat", args->repeat, "Timed passes")->capture_default_str();
  cmd->add_option("--warmup", args->warmup, "Untimed passes first (the first one compiles)")->capture_default_str();
  cmd->add_flag("--eager", args->eager, "Run the plain eager forward instead of the inference path");
  const auto action = [args]() -> int {
    if (args->size < 1 || args->batch < 1 || args->repeat < 1 || args->warmup < 0)
      throw std::invalid_argument("bench needs --size, --batch and --repeat of at least 1 and --warmup of at least 0");
    const int threads = configure_threads(args->threads);
    const auto dtype = parse_inference_dtype(args->dtype);
    auto model = create_model(args->arch, args->words);
    model->eval();
    const auto in_channels = model->config().value("in_channels", int64_t{3});
    torch::manual_seed(0);
    const auto x = torch::randn({args->batch, in_channels, args->size, args->size});
    const auto options = InferenceOptions().optimize(!args->eager).dtype(dtype);
    auto forward = [&] { return model->predict(x, options).mask; };
    const auto compile_start = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < std::max<int64_t>(args->warmup, 1); ++i) forward();
    const double warmup_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - compile_start).count();
    std::vector<double> ms;
    for (int64_t i = 0; i < args->repeat; ++i) {
      const auto start = std::chrono::steady_clock::now();
      forward();
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
    std::sort(ms.begin(), ms.end());
    const double median = ms[ms.size() / 2], min = ms.front();
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    const double peak_mb = static_cast<double>(usage.ru_maxrss) / 1024.0;
    std::cout << fmt::format("{} {} input {}x{}x{}x{}, {} threads, {} {}\n", args->arch, fmt::join(args->words, " "),
                             args->batch, in_channels, args->size, args->size, threads,
                             args->eager ? "eager" : "inference path", args->dtype);
    if (!args->eager) {
      InferenceModel compiled(model, options);
      std::cout << compiled->describe(x) << "\n";
    }
    std::cout << fmt::format("warm-up {:.2f} s; median {:.1f} ms, min {:.1f} ms over {} passes, {:.1f} images/s, "
                             "peak RSS {:.0f} MB\n",
                             warmup_s, median, min, args->repeat, 1000.0 * args->batch / median, peak_mb);
    std::cout << fmt::format("median_ms={:.2f} min_ms={:.2f} peak_rss_mb={:.0f}", median, min, peak_mb) << std::endl;
    return 0;
  };
  cmd->callback([&run, action] { run = action; });
}

}  // namespace smp::cli
