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

}  // namespace

BENCHMARK_MAIN();
