// Forward latency and training steps of segmentation models (Google Benchmark). Threads: the
// benchmark's argument (2). bench/compare.sh puts these beside Python smp and ONNX Runtime.
#include <benchmark/benchmark.h>
#include <smp/smp.h>

namespace {

// Unet(tu-resnet18) forward at 512x512, batch 1: eager (as the modules run it) and the inference
// path in float32 and bfloat16.
void forward(benchmark::State& state, const smp::InferenceOptions& options) {
  smp::configure_threads(static_cast<int>(state.range(0)));
  if (options.dtype() == torch::kBFloat16 && !smp::cpu_supports_bfloat16()) {
    state.SkipWithError("this CPU has no native bfloat16");
    return;
  }
  auto model = smp::Unet(smp::UnetOptions().encoder_name("tu-resnet18"));
  model->eval();
  auto x = torch::randn({1, 3, 512, 512});
  model->predict(x, options);  // warm-up: compiles, and fills the allocator's cache
  for (auto _ : state) benchmark::DoNotOptimize(model->predict(x, options).mask);
}
void BM_UnetResnet18Forward512Eager(benchmark::State& state) { forward(state, smp::InferenceOptions().optimize(false)); }
void BM_UnetResnet18Forward512(benchmark::State& state) { forward(state, smp::InferenceOptions()); }
void BM_UnetResnet18Forward512Bf16(benchmark::State& state) {
  forward(state, smp::InferenceOptions().dtype(torch::kBFloat16));
}
BENCHMARK(BM_UnetResnet18Forward512Eager)->Arg(2)->Unit(benchmark::kMillisecond)->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_UnetResnet18Forward512)->Arg(2)->Unit(benchmark::kMillisecond)->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_UnetResnet18Forward512Bf16)->Arg(2)->Unit(benchmark::kMillisecond)->Repetitions(5)->ReportAggregatesOnly(true);

// One training step (forward, Dice + cross-entropy, backward, AdamW) on a batch of 8 at 256x256, as
// the trainer runs it (smp::train::training_loss); items/s is the training throughput in images per
// second, data loading excluded.
void train_step(benchmark::State& state, const smp::train::TrainerOptions& options) {
  smp::configure_threads(static_cast<int>(state.range(0)));
  if (options.precision() == "bfloat16" && !smp::cpu_supports_bfloat16()) {
    state.SkipWithError("this CPU has no native bfloat16");
    return;
  }
  auto model = smp::Unet(smp::UnetOptions().encoder_name("tu-resnet18").classes(4));
  model->train();
  if (options.channels_last()) smp::train::to_channels_last(*model);
  smp::configure_cpu_allocator(true);  // as the Trainer does
  auto loss = smp::losses::create_loss(
      "CombinedLoss",
      nlohmann::json{{"losses",
                      {{{"class", "DiceLoss"}, {"options", {{"mode", "multiclass"}}}, {"weight", 1.0}},
                       {{"class", "SoftCrossEntropyLoss"}, {"options", {{"smooth_factor", 0.0}}}, {"weight", 1.0}}}}});
  torch::optim::AdamW optimizer(model->parameters(), torch::optim::AdamWOptions(1e-3));
  auto x = torch::randn({8, 3, 256, 256});
  auto y = torch::randint(0, 4, {8, 256, 256});
  auto step = [&] {
    optimizer.zero_grad();
    smp::train::training_loss(*model, loss, x, y, options).backward();
    optimizer.step();
  };
  step();  // warm-up
  for (auto _ : state) step();
  state.SetItemsProcessed(state.iterations() * x.size(0));
}
void BM_UnetResnet18TrainStep256(benchmark::State& state) { train_step(state, smp::train::TrainerOptions()); }
void BM_UnetResnet18TrainStep256ChannelsLast(benchmark::State& state) {
  train_step(state, smp::train::TrainerOptions().channels_last(true));
}
void BM_UnetResnet18TrainStep256Bf16(benchmark::State& state) {
  train_step(state, smp::train::TrainerOptions().channels_last(true).precision("bfloat16"));
}
BENCHMARK(BM_UnetResnet18TrainStep256)->Arg(2)->Unit(benchmark::kMillisecond)->Repetitions(3)->ReportAggregatesOnly(true);
BENCHMARK(BM_UnetResnet18TrainStep256ChannelsLast)->Arg(2)->Unit(benchmark::kMillisecond)->Repetitions(3)->ReportAggregatesOnly(true);
BENCHMARK(BM_UnetResnet18TrainStep256Bf16)->Arg(2)->Unit(benchmark::kMillisecond)->Repetitions(3)->ReportAggregatesOnly(true);

}  // namespace

BENCHMARK_MAIN();
