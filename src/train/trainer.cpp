#include <smp/io.h>
#include <smp/metrics.h>
#include <smp/train.h>

#include "util/cpu_allocator.h"
#include "util/log.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/autocast_mode.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <numeric>

namespace smp::train {

namespace fs = std::filesystem;

namespace {

// Each enum's names in one table, read by both parse_* and to_string.
template <typename Enum, size_t N>
using Names = std::array<std::pair<Enum, const char*>, N>;

constexpr Names<Optimizer, 2> kOptimizerNames{{{Optimizer::kAdamW, "adamw"}, {Optimizer::kSGD, "sgd"}}};
constexpr Names<Schedule, 4> kScheduleNames{{{Schedule::kConstant, "constant"},
                                             {Schedule::kStep, "step"},
                                             {Schedule::kPoly, "poly"},
                                             {Schedule::kCosine, "cosine"}}};
constexpr Names<Monitor, 4> kMonitorNames{
    {{Monitor::kMIoU, "miou"}, {Monitor::kMF1, "mf1"}, {Monitor::kAccuracy, "accuracy"}, {Monitor::kLoss, "loss"}}};

// A value outside the enum's declared ones, which only a cast from an integer can make.
template <typename Enum>
[[noreturn]] void invalid_value(const char* what, Enum value) {
  throw std::invalid_argument(fmt::format("invalid {} value {}", what, static_cast<int>(value)));
}

template <typename Enum, size_t N>
Enum parse_name(const char* what, const Names<Enum, N>& names, const std::string& name) {
  std::string valid;
  for (const auto& [value, text] : names) {
    if (name == text) return value;
    valid += (valid.empty() ? "" : ", ") + std::string(text);
  }
  throw std::invalid_argument(fmt::format("{} must be one of {}; got '{}'", what, valid, name));
}

template <typename Enum, size_t N>
std::string name_of(const char* what, const Names<Enum, N>& names, Enum value) {
  for (const auto& [v, text] : names)
    if (v == value) return text;
  invalid_value(what, value);
}

}  // namespace

Optimizer parse_optimizer(const std::string& name) { return parse_name("optimizer", kOptimizerNames, name); }
Schedule parse_schedule(const std::string& name) { return parse_name("schedule", kScheduleNames, name); }
Monitor parse_monitor(const std::string& name) { return parse_name("monitor", kMonitorNames, name); }
std::string to_string(Optimizer optimizer) { return name_of("optimizer", kOptimizerNames, optimizer); }
std::string to_string(Schedule schedule) { return name_of("schedule", kScheduleNames, schedule); }
std::string to_string(Monitor monitor) { return name_of("monitor", kMonitorNames, monitor); }

double learning_rate(const ScheduleOptions& s, double base_lr, int64_t step, int64_t total_steps,
                     int64_t steps_per_epoch) {
  if (step < s.warmup_steps()) return base_lr * static_cast<double>(step + 1) / static_cast<double>(s.warmup_steps());
  const double t = std::min(1.0, static_cast<double>(step - s.warmup_steps()) /
                                     static_cast<double>(std::max<int64_t>(1, total_steps - s.warmup_steps())));
  switch (s.type()) {
    case Schedule::kConstant:
      return base_lr;
    case Schedule::kStep: {
      const auto epoch = step / std::max<int64_t>(1, steps_per_epoch);
      return base_lr * std::pow(s.gamma(), static_cast<double>(epoch / std::max<int64_t>(1, s.step_epochs())));
    }
    case Schedule::kPoly:
      return s.min_lr() + (base_lr - s.min_lr()) * std::pow(1.0 - t, s.power());
    case Schedule::kCosine:
      return s.min_lr() + (base_lr - s.min_lr()) * 0.5 * (1.0 + std::cos(M_PI * t));
  }
  invalid_value("schedule", s.type());
}

namespace {

bool one_of(const std::string& value, std::initializer_list<const char*> choices) {
  return std::any_of(choices.begin(), choices.end(), [&value](const char* c) { return value == c; });
}

// Masks as the losses take them: class indices [N, H, W], or [N, 1, H, W] floats for one class.
torch::Tensor loss_target(const torch::Tensor& masks, int64_t classes) {
  return classes == 1 ? masks.unsqueeze(1).to(torch::kFloat) : masks;
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimizerOptions& o, std::vector<torch::Tensor> params) {
  switch (o.type()) {
    case Optimizer::kAdamW:
      return std::make_unique<torch::optim::AdamW>(std::move(params),
                                                   torch::optim::AdamWOptions(o.lr()).weight_decay(o.weight_decay()));
    case Optimizer::kSGD:
      return std::make_unique<torch::optim::SGD>(
          std::move(params),
          torch::optim::SGDOptions(o.lr()).momentum(o.momentum()).nesterov(o.nesterov()).weight_decay(o.weight_decay()));
  }
  invalid_value("optimizer", o.type());
}

double monitored(const EpochRecord& r, Monitor monitor) {
  if (!r.val) return r.train_loss;
  switch (monitor) {
    case Monitor::kMIoU:
      return r.val->miou;
    case Monitor::kMF1:
      return r.val->mf1;
    case Monitor::kAccuracy:
      return r.val->accuracy;
    case Monitor::kLoss:
      return r.val->loss;
  }
  invalid_value("monitor", monitor);
}

bool lower_is_better(Monitor monitor, bool has_val) { return monitor == Monitor::kLoss || !has_val; }

// The epoch's line in the log: rate, losses, validation scores, time.
std::string epoch_summary(const EpochRecord& r, int64_t epochs) {
  auto line = fmt::format("epoch {}/{}  lr {:.3g}  train_loss {:.4f}", r.epoch, epochs, r.lr, r.train_loss);
  if (r.val)
    line += fmt::format("  val_loss {:.4f}  mIoU {:.4f}  mF1 {:.4f}  acc {:.4f}", r.val->loss, r.val->miou, r.val->mf1,
                        r.val->accuracy);
  return line + fmt::format("  {:.1f} s  {:.1f} img/s{}", r.seconds, r.images_per_second, r.best ? "  *best" : "");
}

std::string duration(double seconds) {
  const auto s = static_cast<int64_t>(std::max(0.0, seconds));
  return fmt::format("{}:{:02d}", s / 60, s % 60);
}

double mean(const std::vector<double>& v) {
  return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

// One line per epoch appended to log.csv or log.jsonl.
void append_log(const std::string& dir, const std::string& format, const EpochRecord& r) {
  const bool csv = format == "csv";
  const auto path = fs::path(dir) / (csv ? "log.csv" : "log.jsonl");
  const bool fresh = !fs::exists(path);
  std::ofstream out(path, std::ios::app);
  if (!out) throw std::runtime_error("cannot write the training log " + path.string());
  const auto& v = r.val;
  if (csv) {
    if (fresh) out << "epoch,lr,train_loss,val_loss,miou,mf1,accuracy,seconds,images_per_second,best\n";
    out << fmt::format("{},{:.6g},{:.6f},{},{},{},{},{:.2f},{:.1f},{}\n", r.epoch, r.lr, r.train_loss,
                       v ? fmt::format("{:.6f}", v->loss) : "", v ? fmt::format("{:.6f}", v->miou) : "",
                       v ? fmt::format("{:.6f}", v->mf1) : "", v ? fmt::format("{:.6f}", v->accuracy) : "", r.seconds,
                       r.images_per_second, r.best ? 1 : 0);
    return;
  }
  nlohmann::json j = {{"epoch", r.epoch},           {"lr", r.lr},     {"train_loss", r.train_loss},
                      {"seconds", r.seconds},       {"images_per_second", r.images_per_second},
                      {"best", r.best}};
  if (v) {
    j["val_loss"] = v->loss;
    j["miou"] = v->miou;
    j["mf1"] = v->mf1;
    j["accuracy"] = v->accuracy;
    j["iou"] = v->iou;
  }
  out << j.dump() << "\n";
}

// A progress bar redrawn on one terminal line.
class Progress {
 public:
  explicit Progress(bool enabled) : enabled_(enabled && isatty(fileno(stderr))) {}
  void update(int64_t epoch, int64_t epochs, int64_t batch, int64_t batches, double loss, double rate, double eta) {
    if (!enabled_) return;
    constexpr int kWidth = 24;
    const auto filled = batches > 0 ? static_cast<int>(kWidth * batch / batches) : 0;
    std::cerr << fmt::format("\repoch {}/{} [{}{}] {}/{} loss {:.4f} {:.1f} img/s ETA {}  ", epoch, epochs,
                             std::string(static_cast<size_t>(filled), '#'),
                             std::string(static_cast<size_t>(kWidth - filled), '.'), batch, batches, loss, rate,
                             duration(eta))
              << std::flush;
  }
  void finish() {
    if (enabled_) std::cerr << "\r" << std::string(100, ' ') << "\r" << std::flush;
  }

 private:
  bool enabled_;
};

// The samples of `dataset` at `indices`.
class SubsetDataset : public data::Dataset {
 public:
  SubsetDataset(std::shared_ptr<const data::Dataset> dataset, std::vector<int64_t> indices)
      : dataset_(std::move(dataset)), indices_(std::move(indices)) {}
  int64_t size() const override { return static_cast<int64_t>(indices_.size()); }
  data::Sample get(int64_t index) const override { return dataset_->get(indices_.at(static_cast<size_t>(index))); }

 private:
  std::shared_ptr<const data::Dataset> dataset_;
  std::vector<int64_t> indices_;
};

}  // namespace

std::pair<std::shared_ptr<const data::Dataset>, std::shared_ptr<const data::Dataset>> split_dataset(
    std::shared_ptr<const data::Dataset> dataset, double fraction, uint64_t seed) {
  const auto n = dataset->size();
  const auto held = static_cast<int64_t>(std::llround(static_cast<double>(n) * fraction));
  if (fraction <= 0 || fraction >= 1 || held < 1 || held >= n)
    throw std::invalid_argument(fmt::format(
        "cannot hold out a fraction {} of {} samples for validation: both parts need at least one sample (give "
        "validation data separately, or another val_split)",
        fraction, n));
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  data::Rng rng(data::sample_seed(seed, -1, 0));
  for (int64_t i = n - 1; i > 0; --i) std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(rng.integer(0, i))]);
  std::vector<int64_t> val(order.begin(), order.begin() + held), rest(order.begin() + held, order.end());
  std::sort(val.begin(), val.end());
  std::sort(rest.begin(), rest.end());
  return {std::make_shared<SubsetDataset>(dataset, rest), std::make_shared<SubsetDataset>(dataset, val)};
}

EvalResult evaluate(SegmentationModelImpl& model, data::Loader& loader, int64_t classes, const losses::Loss& loss,
                    std::optional<int64_t> ignore_index, torch::Device device, const InferenceOptions& inference) {
  const bool was_training = model.is_training();
  model.eval();
  torch::InferenceMode inference_mode;
  torch::Tensor tp, fp, fn, tn;
  double loss_sum = 0;
  int64_t batches = 0;
  EvalResult r;
  loader.start_epoch(0);
  while (auto batch = loader.next()) {
    auto images = batch->images.to(device);
    auto masks = batch->masks.to(device);
    auto logits = model.predict(images, inference).mask;
    if (loss) loss_sum += loss->forward(logits, loss_target(masks, classes)).item<double>();
    metrics::Stats s = classes == 1
                           ? metrics::get_stats((logits > 0).to(torch::kLong), masks.unsqueeze(1), "binary",
                                                std::nullopt, ignore_index)
                           : metrics::get_stats(logits.argmax(1), masks, "multiclass", std::nullopt, ignore_index,
                                                classes);
    auto add = [](torch::Tensor& total, const torch::Tensor& part) {
      auto summed = part.sum(0, /*keepdim=*/true).cpu();
      total = total.defined() ? total + summed : summed;
    };
    add(tp, s.tp);
    add(fp, s.fp);
    add(fn, s.fn);
    add(tn, s.tn);
    r.images += images.size(0);
    ++batches;
  }
  if (was_training) model.train();
  if (!tp.defined()) throw std::invalid_argument("evaluate: the loader gave no batches");
  const metrics::Stats total{tp, fp, fn, tn};
  auto per_class = [](const torch::Tensor& t) {
    auto flat = t.reshape({-1}).to(torch::kDouble).contiguous();
    return std::vector<double>(flat.data_ptr<double>(), flat.data_ptr<double>() + flat.numel());
  };
  r.iou = per_class(metrics::iou_score(total));
  r.f1 = per_class(metrics::f1_score(total));
  r.precision = per_class(metrics::precision(total));
  r.recall = per_class(metrics::recall(total));
  r.miou = mean(r.iou);
  r.mf1 = mean(r.f1);
  // Every counted pixel is a tp or fn of exactly one class (multiclass); binary counts tn as correct too.
  const double correct = (classes == 1 ? tp.sum() + tn.sum() : tp.sum()).item<double>();
  const double pixels = (classes == 1 ? tp.sum() + tn.sum() + fp.sum() + fn.sum() : tp.sum() + fn.sum()).item<double>();
  r.accuracy = pixels > 0 ? correct / pixels : 0.0;
  r.loss = batches > 0 ? loss_sum / static_cast<double>(batches) : 0.0;
  return r;
}

std::string format_eval_table(const EvalResult& r, const std::vector<std::string>& class_names) {
  std::string out = fmt::format("{:<16} {:>8} {:>8} {:>10} {:>8}\n", "class", "IoU", "F1", "precision", "recall");
  for (size_t c = 0; c < r.iou.size(); ++c) {
    const auto name = c < class_names.size() ? class_names[c] : std::to_string(c);
    out += fmt::format("{:<16} {:>8.4f} {:>8.4f} {:>10.4f} {:>8.4f}\n", name, r.iou[c], r.f1[c], r.precision[c],
                       r.recall[c]);
  }
  out += fmt::format("{:<16} {:>8.4f} {:>8.4f} {:>10.4f} {:>8.4f}\n", "mean", r.miou, r.mf1, mean(r.precision),
                     mean(r.recall));
  out += fmt::format("pixel accuracy {:.4f} over {} images\n", r.accuracy, r.images);
  return out;
}

namespace {

// Autocast to bfloat16 on the model's device for one scope.
class AutocastScope {
 public:
  AutocastScope(bool enabled, const torch::Device& device) : enabled_(enabled), cpu_(device.is_cpu()) {
    if (!enabled_) return;
    if (cpu_) {
      at::autocast::set_cpu_enabled(true);
      at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    } else {
      at::autocast::set_enabled(true);
      at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    }
    at::autocast::increment_nesting();
  }
  ~AutocastScope() {
    if (!enabled_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    if (cpu_)
      at::autocast::set_cpu_enabled(false);
    else
      at::autocast::set_enabled(false);
  }

 private:
  bool enabled_, cpu_;
};

}  // namespace

torch::Tensor training_loss(SegmentationModelImpl& model, const losses::Loss& loss, const torch::Tensor& images,
                            const torch::Tensor& target, const TrainerOptions& options) {
  const auto input = options.channels_last() && images.dim() == 4 ? images.contiguous(at::MemoryFormat::ChannelsLast)
                                                                  : images;
  torch::Tensor logits;
  {
    AutocastScope autocast(options.precision() == "bfloat16", images.device());
    logits = model.forward(input);
  }
  return loss->forward(logits.to(torch::kFloat32), target);
}

void to_channels_last(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters())
    if (p.dim() == 4) p.set_data(p.data().contiguous(at::MemoryFormat::ChannelsLast));
  for (auto& b : module.buffers())
    if (b.dim() == 4) b.set_data(b.data().contiguous(at::MemoryFormat::ChannelsLast));
}

Trainer::Trainer(SegmentationModel model, losses::Loss loss, TrainerOptions options)
    : model_(std::move(model)), loss_(std::move(loss)), options_(std::move(options)) {
  if (!loss_) throw std::invalid_argument("Trainer needs a loss");
  if (options_.accumulate() < 1) throw std::invalid_argument("accumulate must be at least 1");
  if (!one_of(options_.log_format(), {"csv", "jsonl"}))
    throw std::invalid_argument("log_format must be csv or jsonl; got '" + options_.log_format() + "'");
  if (!one_of(options_.precision(), {"float32", "bfloat16"}))
    throw std::invalid_argument("precision must be float32 or bfloat16; got '" + options_.precision() + "'");
  if (options_.precision() == "bfloat16" && options_.device().is_cpu() && !cpu_supports_bfloat16())
    throw std::invalid_argument(
        "precision bfloat16 needs a CPU with AVX-512 BF16 or AMX, which this one lacks; use precision float32");
  smp::detail::ensure_cpu_allocator();
  model_->to(options_.device());
  if (options_.channels_last()) to_channels_last(*model_);
  optimizer_ = make_optimizer(options_.optimizer(), model_->parameters());
}

void Trainer::save_checkpoint(const std::string& name) const {
  // Written beside the old one and swapped in by renames, so an interruption leaves either the
  // previous checkpoint or the new one, never a mix.
  const auto dir = fs::path(options_.output_dir());
  const auto final_dir = dir / name, tmp = dir / (name + ".tmp"), old = dir / (name + ".old");
  fs::remove_all(tmp);
  model_->save_pretrained(tmp.string());
  torch::serialize::OutputArchive archive;
  optimizer_->save(archive);
  archive.write("epoch", torch::tensor(epoch_));
  archive.write("step", torch::tensor(step_));
  archive.write("stale_epochs", torch::tensor(stale_epochs_));
  archive.write("best", best_ ? torch::tensor(*best_, torch::kDouble) : torch::empty({0}, torch::kDouble));
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    archive.write("rng", gen.get_state());
  }
  archive.save_to((tmp / "trainer_state.pt").string());
  fs::remove_all(old);
  if (fs::exists(final_dir)) fs::rename(final_dir, old);
  fs::rename(tmp, final_dir);
  fs::remove_all(old);
}

bool Trainer::resume() {
  if (options_.output_dir().empty()) return false;
  auto dir = fs::path(options_.output_dir()) / "last";
  // An interruption between the two renames of save_checkpoint leaves only last.old.
  if (!fs::exists(dir / "trainer_state.pt")) dir = fs::path(options_.output_dir()) / "last.old";
  if (!fs::exists(dir / "trainer_state.pt")) return false;
  io::load_state_dict(*model_, io::read_safetensors((dir / "model.safetensors").string()).tensors);
  torch::serialize::InputArchive archive;
  archive.load_from((dir / "trainer_state.pt").string());
  optimizer_->load(archive);
  auto read = [&archive](const char* key) {
    torch::Tensor t;
    archive.read(key, t);
    return t;
  };
  epoch_ = read("epoch").item<int64_t>();
  step_ = read("step").item<int64_t>();
  stale_epochs_ = read("stale_epochs").item<int64_t>();
  auto best = read("best");
  best_ = best.numel() ? std::optional<double>(best.item<double>()) : std::nullopt;
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(read("rng"));
  return true;
}

bool Trainer::improved(const EpochRecord& record) const {
  const double value = monitored(record, options_.monitor());
  if (!best_) return true;
  return lower_is_better(options_.monitor(), record.val.has_value()) ? value < *best_ : value > *best_;
}

std::vector<EpochRecord> Trainer::fit(data::Loader& train, data::Loader* val) {
  const auto classes = model_->config().value("classes", int64_t{1});
  const auto batches = train.batches_per_epoch();
  if (batches == 0) throw std::invalid_argument("the training loader has no batches (empty dataset, or drop_last with "
                                                "fewer samples than batch_size)");
  const auto steps_per_epoch = (batches + options_.accumulate() - 1) / options_.accumulate();
  const auto total_steps = steps_per_epoch * options_.epochs();
  if (!options_.output_dir().empty()) fs::create_directories(options_.output_dir());
  Progress progress(options_.progress());
  std::vector<EpochRecord> records;
  while (epoch_ < options_.epochs()) {
    const auto start = std::chrono::steady_clock::now();
    auto elapsed = [&start] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
    model_->train();
    train.start_epoch(epoch_);
    EpochRecord record;
    record.epoch = epoch_ + 1;
    double loss_sum = 0, step_loss = 0;
    int64_t seen = 0, batch_index = 0, in_step = 0;
    optimizer_->zero_grad();
    auto take_step = [&] {
      const double lr =
          learning_rate(options_.schedule(), options_.optimizer().lr(), step_, total_steps, steps_per_epoch);
      for (auto& group : optimizer_->param_groups()) group.options().set_lr(lr);
      if (options_.clip_grad_norm() > 0) torch::nn::utils::clip_grad_norm_(model_->parameters(), options_.clip_grad_norm());
      optimizer_->step();
      optimizer_->zero_grad();
      ++step_;
      record.lr = lr;
      if (on_step) on_step(step_, step_loss / static_cast<double>(in_step));
      step_loss = 0;
      in_step = 0;
    };
    while (auto batch = train.next()) {
      auto images = batch->images.to(options_.device());
      auto masks = batch->masks.to(options_.device());
      auto loss = training_loss(*model_, loss_, images, loss_target(masks, classes), options_);
      (loss / static_cast<double>(options_.accumulate())).backward();
      const double value = loss.item<double>();
      loss_sum += value;
      step_loss += value;
      seen += images.size(0);
      ++batch_index;
      if (++in_step == options_.accumulate()) take_step();
      const double rate = static_cast<double>(seen) / std::max(1e-9, elapsed());
      progress.update(record.epoch, options_.epochs(), batch_index, batches, loss_sum / static_cast<double>(batch_index),
                      rate, elapsed() / static_cast<double>(batch_index) * static_cast<double>(batches - batch_index));
    }
    if (in_step > 0) take_step();  // the epoch's last, partial accumulation
    progress.finish();
    record.train_loss = batch_index ? loss_sum / static_cast<double>(batch_index) : 0.0;
    record.images_per_second = static_cast<double>(seen) / std::max(1e-9, elapsed());
    if (val) record.val = evaluate(*model_, *val, classes, loss_, options_.ignore_index(), options_.device());
    record.seconds = elapsed();
    record.best = improved(record);
    if (record.best) {
      best_ = monitored(record, options_.monitor());
      stale_epochs_ = 0;
    } else {
      ++stale_epochs_;
    }
    ++epoch_;
    log::logger().info("{}", epoch_summary(record, options_.epochs()));
    if (!options_.output_dir().empty()) {
      if (record.best) save_checkpoint("best");
      save_checkpoint("last");
      append_log(options_.output_dir(), options_.log_format(), record);
    }
    records.push_back(record);
    if (on_epoch) on_epoch(record);
    if (options_.early_stopping() > 0 && stale_epochs_ >= options_.early_stopping()) {
      log::logger().info("early stopping: no improvement of {} for {} epochs", to_string(options_.monitor()),
                         stale_epochs_);
      break;
    }
  }
  return records;
}

}  // namespace smp::train
