// Forward latency of segmentation models (Google Benchmark). Threads: SMP_NUM_THREADS or 2.
#include <benchmark/benchmark.h>
#include <smp/smp.h>

#include <cstdlib>

namespace {

void BM_UnetResnet18Forward512(benchmark::State& state) {
  smp::configure_threads(static_cast<int>(state.range(0)));
  auto model = smp::Unet(smp::UnetOptions().encoder_name("tu-resnet18"));
  model->eval();
  auto x = torch::randn({1, 3, 512, 512});
  torch::InferenceMode guard;
  model->forward(x);  // warm-up: allocator and OpenBLAS thread pool
  for (auto _ : state) benchmark::DoNotOptimize(model->forward(x));
}
BENCHMARK(BM_UnetResnet18Forward512)->Arg(2)->Unit(benchmark::kMillisecond)->Repetitions(5)->ReportAggregatesOnly(true);

// One training step (forward, Dice + cross-entropy, backward, AdamW) on a batch of 8 at 256x256;
// items/s is the training throughput in images per second, data loading excluded.
void BM_UnetResnet18TrainStep256(benchmark::State& state) {
  smp::configure_threads(static_cast<int>(state.range(0)));
  auto model = smp::Unet(smp::UnetOptions().encoder_name("tu-resnet18").classes(4));
  model->train();
  auto dice = smp::losses::create_loss("DiceLoss", nlohmann::json{{"mode", "multiclass"}});
  auto cross_entropy = smp::losses::create_loss("SoftCrossEntropyLoss", nlohmann::json{{"smooth_factor", 0.0}});
  torch::optim::AdamW optimizer(model->parameters(), torch::optim::AdamWOptions(1e-3));
  auto x = torch::randn({8, 3, 256, 256});
  auto y = torch::randint(0, 4, {8, 256, 256});
  auto step = [&] {
    optimizer.zero_grad();
    auto logits = model->forward(x);
    auto loss = dice->forward(logits, y) + cross_entropy->forward(logits, y);
    loss.backward();
    optimizer.step();
  };
  step();  // warm-up
  for (auto _ : state) step();
  state.SetItemsProcessed(state.iterations() * x.size(0));
}
BENCHMARK(BM_UnetResnet18TrainStep256)->Arg(2)->Unit(benchmark::kMillisecond)->Repetitions(3)->ReportAggregatesOnly(true);

}  // namespace

BENCHMARK_MAIN();
