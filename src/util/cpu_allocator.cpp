#include "util/cpu_allocator.h"

#include <smp/smp.h>

#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <fmt/format.h>
#include <sys/mman.h>

#include <cstdlib>
#include <list>
#include <mutex>
#include <unordered_map>

namespace smp {

namespace {

constexpr size_t kMinCached = size_t{64} << 10;  // smaller blocks come from glibc's heap, already mapped
constexpr size_t kHugePage = size_t{2} << 20;    // blocks from this size on are mapped on transparent huge pages
constexpr size_t kMinCache = size_t{64} << 20;   // free memory kept even when less was ever in use

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

// Freed blocks of 64 KiB and more are kept by size and handed out again, so a model that runs the
// same shapes repeatedly touches no fresh page after its first pass. Fresh pages are what costs:
// on the VMs this project runs on, a first touch costs ~16 us per 4 KiB page (32 MiB: ~125 ms, more
// than the convolution that fills it); huge pages make it ~3 ms. Free blocks are capped at the most
// memory ever in use through the allocator (oldest freed first), so the cache never holds more than
// one peak's worth.
class CachingCpuAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t nbytes) const override {
    if (nbytes < kMinCached) {
      void* p = c10::alloc_cpu(nbytes);
      return {p, p, &c10::free_cpu, c10::Device(c10::DeviceType::CPU)};
    }
    const size_t size = nbytes >= kHugePage ? round_up(nbytes, kHugePage) : round_up(nbytes, kMinCached);
    void* p = self().take(size);
    return {p, p, &release, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &release; }

  // Returns every free block to the system. The peak stays: blocks are reused by exact size only,
  // so a program whose sizes vary needs more cached blocks than its own peak in use (measured:
  // starting a new peak here made EfficientNet's Unet 15-20% slower, blocks evicted every pass).
  void trim() {
    std::vector<FreeBlock> blocks;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      blocks.assign(free_.begin(), free_.end());
      free_.clear();
      by_size_.clear();
      free_bytes_ = 0;
    }
    for (const auto& b : blocks) give_back(b.ptr, b.size);
  }

  static CachingCpuAllocator& self() {
    static auto* instance = new CachingCpuAllocator();  // never destroyed: tensors may outlive statics
    return *instance;
  }

 private:
  struct FreeBlock {
    void* ptr;
    size_t size;
  };

  void* take(size_t size) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (auto it = by_size_.find(size); it != by_size_.end()) {
        auto block = it->second;
        by_size_.erase(it);
        void* p = block->ptr;
        free_bytes_ -= size;
        free_.erase(block);
        track(p, size);
        return p;
      }
    }
    void* p = nullptr;
    if (size >= kHugePage) {
      p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED)
        throw std::bad_alloc();
      madvise(p, size, MADV_HUGEPAGE);
    } else {
      p = c10::alloc_cpu(size);
    }
    std::lock_guard<std::mutex> lock(mutex_);
    track(p, size);
    return p;
  }

  void track(void* p, size_t size) {
    live_.emplace(p, size);
    live_bytes_ += size;
    peak_bytes_ = std::max(peak_bytes_, live_bytes_);
  }

  static void give_back(void* p, size_t size) {
    if (size >= kHugePage)
      munmap(p, size);
    else
      c10::free_cpu(p);
  }

  static void release(void* p) {
    auto& a = self();
    std::unique_lock<std::mutex> lock(a.mutex_);
    auto it = a.live_.find(p);
    if (it == a.live_.end()) {  // a small block (raw_allocate hands out this deleter for those too)
      lock.unlock();
      c10::free_cpu(p);
      return;
    }
    const size_t size = it->second;
    a.live_.erase(it);
    a.live_bytes_ -= size;
    a.free_.push_front({p, size});
    a.by_size_.emplace(size, a.free_.begin());
    a.free_bytes_ += size;
    std::vector<FreeBlock> evicted;
    while (a.free_bytes_ > std::max(a.peak_bytes_, kMinCache)) {
      auto oldest = std::prev(a.free_.end());
      auto range = a.by_size_.equal_range(oldest->size);
      for (auto m = range.first; m != range.second; ++m)
        if (m->second == oldest) {
          a.by_size_.erase(m);
          break;
        }
      a.free_bytes_ -= oldest->size;
      evicted.push_back(*oldest);
      a.free_.erase(oldest);
    }
    lock.unlock();
    for (const auto& b : evicted) give_back(b.ptr, b.size);
  }

  std::mutex mutex_;
  std::unordered_map<void*, size_t> live_;
  std::list<FreeBlock> free_;  // most recently freed first
  std::unordered_multimap<size_t, std::list<FreeBlock>::iterator> by_size_;
  size_t live_bytes_ = 0, free_bytes_ = 0, peak_bytes_ = 0;
};

std::mutex install_mutex;
bool installed = false, user_choice = false;

void install(bool caching) {
  c10::SetCPUAllocator(caching ? static_cast<c10::Allocator*>(&CachingCpuAllocator::self()) : c10::GetDefaultCPUAllocator(),
                       /*priority=*/1);
  installed = caching;
}

}  // namespace

void configure_cpu_allocator(bool caching) {
  std::lock_guard<std::mutex> lock(install_mutex);
  user_choice = true;
  install(caching);
}

namespace detail {

void ensure_cpu_allocator() {
  std::lock_guard<std::mutex> lock(install_mutex);
  if (installed || user_choice) return;
  const char* env = std::getenv("SMP_CPU_ALLOCATOR");
  const std::string choice = env ? env : "caching";
  if (choice != "caching" && choice != "system")
    throw std::invalid_argument(
        fmt::format("SMP_CPU_ALLOCATOR must be 'caching' or 'system', got '{}'", choice));
  user_choice = choice == "system";
  if (!user_choice) install(true);
}

void trim_cpu_allocator() {
  std::lock_guard<std::mutex> lock(install_mutex);
  if (installed) CachingCpuAllocator::self().trim();
}

}  // namespace detail

}  // namespace smp
