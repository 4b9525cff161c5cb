#include <smp/smp.h>

#include <cstdlib>
#include <thread>

namespace smp {

int configure_threads(int threads) {
  if (threads <= 0) {
    if (const char* env = std::getenv("SMP_NUM_THREADS"); env && *env) {
      char* end = nullptr;
      long v = std::strtol(env, &end, 10);
      if (*end != '\0' || v < 1)
        throw std::invalid_argument(std::string("SMP_NUM_THREADS must be a positive integer, got '") + env + "'");
      threads = static_cast<int>(v);
    } else {
      threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    }
  }
  torch::set_num_threads(threads);
  return threads;
}

}  // namespace smp
