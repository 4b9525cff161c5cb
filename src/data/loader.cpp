// The batch loader: workers claim whole batches in order, a bounded window ahead of the consumer,
// and hand them back through a map keyed by batch number so next() returns them in order.
#include <smp/data.h>

#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>

#include "util/log.h"

namespace smp::data {

namespace {

std::string shape_of(const torch::Tensor& t) {
  std::string out;
  for (auto d : t.sizes()) out += (out.empty() ? "" : "x") + std::to_string(d);
  return out;
}

}  // namespace

Sample load_sample(const Dataset& dataset, const Transform& transform, int64_t index, uint64_t seed, int64_t epoch) {
  Sample s = dataset.get(index);
  if (transform) {
    Rng rng(sample_seed(seed, epoch, index));
    transform(s, rng);
  }
  return s;
}

struct Loader::State {
  std::shared_ptr<const Dataset> dataset;
  Transform transform;
  LoaderOptions options;

  // A finished batch: empty when every sample was skipped, or the error to rethrow in next().
  struct Slot {
    std::optional<Batch> batch;
    std::exception_ptr error;
  };

  std::mutex mutex;
  std::condition_variable work_cv, ready_cv;
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  bool started = false;
  int64_t epoch = 0;
  std::vector<int64_t> order;
  int64_t num_batches = 0;
  int64_t next_claim = 0, next_yield = 0;
  std::map<int64_t, Slot> ready;

  int64_t loaded = 0, skipped = 0;
  std::set<std::string> skip_reasons;
  std::set<int64_t> warned;

  void skip(int64_t index, const std::string& message) {
    std::lock_guard<std::mutex> lock(mutex);
    ++skipped;
    skip_reasons.insert(message);
    if (warned.insert(index).second) log::logger().warn("skipping sample {}: {}", index, message);
  }

  Batch collate(std::vector<Sample>& samples, std::vector<int64_t> indices) {
    const auto& first = samples.front();
    for (const auto& s : samples) {
      if (s.mask.dim() != 2 || s.image.dim() != 3 || s.image.size(1) != s.mask.size(0) ||
          s.image.size(2) != s.mask.size(1))
        throw std::invalid_argument("sample '" + s.name + "' has image " + shape_of(s.image) + " and mask " +
                                    shape_of(s.mask) + "; expected [C, H, W] and [H, W]");
      if (s.image.sizes() != first.image.sizes())
        throw std::invalid_argument("samples of one batch differ in size: '" + first.name + "' is " +
                                    shape_of(first.image) + ", '" + s.name + "' is " + shape_of(s.image) +
                                    "; add resize, random_scale_crop or pad_to_multiple to the transform, or use "
                                    "batch_size 1");
    }
    std::vector<torch::Tensor> images, masks;
    for (auto& s : samples) {
      images.push_back(s.image);
      masks.push_back(s.mask.to(torch::kLong));
    }
    return Batch{torch::stack(images), torch::stack(masks), std::move(indices)};
  }

  Slot build(int64_t batch) {
    torch::NoGradGuard no_grad;
    Slot slot;
    try {
      const auto n = static_cast<int64_t>(order.size());
      const auto begin = batch * options.batch_size(), end = std::min(n, begin + options.batch_size());
      std::vector<Sample> samples;
      std::vector<int64_t> indices;
      for (int64_t pos = begin; pos < end && !stop; ++pos) {
        const auto index = order[static_cast<size_t>(pos)];
        Sample s;
        try {
          s = dataset->get(index);
        } catch (const std::exception& e) {
          skip(index, e.what());
          continue;
        }
        Rng rng(sample_seed(options.seed(), epoch, index));
        if (transform) transform(s, rng);
        samples.push_back(std::move(s));
        indices.push_back(index);
      }
      if (!samples.empty() && !stop) slot.batch = collate(samples, std::move(indices));
    } catch (...) {
      slot.error = std::current_exception();
    }
    return slot;
  }

  void work() {
    for (;;) {
      int64_t batch = 0;
      {
        std::unique_lock<std::mutex> lock(mutex);
        work_cv.wait(lock, [&] {
          return stop || next_claim >= num_batches || next_claim < next_yield + options.prefetch();
        });
        if (stop || next_claim >= num_batches) return;
        batch = next_claim++;
      }
      auto slot = build(batch);
      {
        std::lock_guard<std::mutex> lock(mutex);
        ready.emplace(batch, std::move(slot));
      }
      ready_cv.notify_all();
    }
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stop = true;
    }
    work_cv.notify_all();
    for (auto& t : threads) t.join();
    threads.clear();
    ready.clear();
    stop = false;
  }
};

Loader::Loader(std::shared_ptr<const Dataset> dataset, Transform transform, LoaderOptions options)
    : state_(std::make_unique<State>()) {
  if (!dataset) throw std::invalid_argument("Loader needs a dataset");
  if (dataset->size() < 1) throw std::invalid_argument("Loader: the dataset is empty");
  if (options.batch_size() < 1)
    throw std::invalid_argument("Loader: batch_size must be positive, got " + std::to_string(options.batch_size()));
  if (options.workers() < 0)
    throw std::invalid_argument("Loader: workers must be 0 or more, got " + std::to_string(options.workers()));
  if (options.prefetch() < 1)
    throw std::invalid_argument("Loader: prefetch must be positive, got " + std::to_string(options.prefetch()));
  state_->dataset = std::move(dataset);
  state_->transform = std::move(transform);
  state_->options = options;
}

Loader::~Loader() { state_->stop_workers(); }

int64_t Loader::batches_per_epoch() const {
  const auto n = state_->dataset->size(), b = state_->options.batch_size();
  return state_->options.drop_last() ? n / b : (n + b - 1) / b;
}

void Loader::start_epoch(int64_t epoch) {
  auto& s = *state_;
  s.stop_workers();
  s.epoch = epoch;
  s.order.resize(static_cast<size_t>(s.dataset->size()));
  for (size_t i = 0; i < s.order.size(); ++i) s.order[i] = static_cast<int64_t>(i);
  if (s.options.shuffle()) {
    Rng rng(sample_seed(s.options.seed(), epoch, -1));
    for (auto i = static_cast<int64_t>(s.order.size()) - 1; i > 0; --i)
      std::swap(s.order[static_cast<size_t>(i)], s.order[static_cast<size_t>(rng.integer(0, i))]);
  }
  s.num_batches = batches_per_epoch();
  s.next_claim = s.next_yield = 0;
  s.started = true;
  for (int64_t i = 0; i < s.options.workers(); ++i) s.threads.emplace_back([&s] { s.work(); });
}

std::optional<Batch> Loader::next() {
  auto& s = *state_;
  if (!s.started) throw std::logic_error("Loader::next: call start_epoch first");
  while (s.next_yield < s.num_batches) {
    State::Slot slot;
    if (s.threads.empty()) {
      slot = s.build(s.next_yield++);
    } else {
      std::unique_lock<std::mutex> lock(s.mutex);
      s.ready_cv.wait(lock, [&] { return s.ready.count(s.next_yield) > 0; });
      auto it = s.ready.find(s.next_yield);
      slot = std::move(it->second);
      s.ready.erase(it);
      ++s.next_yield;
      lock.unlock();
      s.work_cv.notify_all();
    }
    if (slot.error) std::rethrow_exception(slot.error);
    if (!slot.batch) continue;
    {
      std::lock_guard<std::mutex> lock(s.mutex);
      s.loaded += static_cast<int64_t>(slot.batch->indices.size());
    }
    return std::move(slot.batch);
  }
  s.stop_workers();
  return std::nullopt;
}

LoaderSummary Loader::summary() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return LoaderSummary{state_->loaded, state_->skipped,
                       std::vector<std::string>(state_->skip_reasons.begin(), state_->skip_reasons.end())};
}

}  // namespace smp::data
