#include <smp/smp.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <thread>

// OpenBLAS, the BLAS of Debian's LibTorch, runs its own thread pool beside LibTorch's; the two spin
// against each other on the same cores (a ViT-S forward was 4x slower here). One BLAS thread per call
// leaves the parallel work to LibTorch's threads. Weak: absent with another BLAS.
extern "C" void openblas_set_num_threads(int threads) __attribute__((weak));

namespace smp {

int configure_threads(int threads) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // Far more threads than cores only oversubscribes; LibTorch's pool hangs starting 100000 of them.
  const int most = std::max(256, 16 * cores);
  const char* given = "threads";
  if (threads <= 0) {
    if (const char* env = std::getenv("SMP_NUM_THREADS"); env && *env) {
      char* end = nullptr;
      long v = std::strtol(env, &end, 10);
      if (*end != '\0' || v < 1)
        throw std::invalid_argument(std::string("SMP_NUM_THREADS must be a positive integer, got '") + env + "'");
      threads = static_cast<int>(std::min<long>(v, std::numeric_limits<int>::max()));
      given = "SMP_NUM_THREADS";
    } else {
      threads = cores;
    }
  }
  if (threads > most)
    throw std::invalid_argument(fmt::format("{} = {} is more than this machine can use ({} cores); give at most {}",
                                            given, threads, cores, most));
  torch::set_num_threads(threads);
  if (openblas_set_num_threads) openblas_set_num_threads(1);
  return threads;
}

}  // namespace smp
