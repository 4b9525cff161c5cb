// Training and evaluation: optimizer, learning-rate schedule, epochs with metrics, checkpoints that
// are smp folders plus the trainer's state, resume, early stopping, progress and an epoch log.
#pragma once

#include <torch/torch.h>

#include <smp/data.h>
#include <smp/losses.h>
#include <smp/models.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace smp::train {

// The choices of TrainerOptions as types; parse_* read the names the command line and configs use
// (throwing std::invalid_argument that lists the valid ones) and to_string gives them back.
enum class Optimizer { kAdamW, kSGD };
enum class Schedule { kConstant, kStep, kPoly, kCosine };
// Validation metric that picks the best checkpoint and drives early stopping: mIoU, mF1 and pixel
// accuracy are better higher, the loss lower.
enum class Monitor { kMIoU, kMF1, kAccuracy, kLoss };

Optimizer parse_optimizer(const std::string& name);  // "adamw", "sgd"
Schedule parse_schedule(const std::string& name);    // "constant", "step", "poly", "cosine"
Monitor parse_monitor(const std::string& name);      // "miou", "mf1", "accuracy", "loss"
std::string to_string(Optimizer optimizer);
std::string to_string(Schedule schedule);
std::string to_string(Monitor monitor);

struct OptimizerOptions {
  TORCH_ARG(Optimizer, type) = Optimizer::kAdamW;
  TORCH_ARG(double, lr) = 1e-3;
  TORCH_ARG(double, weight_decay) = 1e-4;
  TORCH_ARG(double, momentum) = 0.9;  // sgd only
  TORCH_ARG(bool, nesterov) = false;  // sgd only
};

// The learning rate of every optimizer step: a linear warmup from 0 over `warmup_steps`, then
// constant, step (times gamma every step_epochs), poly ((1 - t)^power) or cosine (down to min_lr),
// where t runs from 0 to 1 over the steps after the warmup.
struct ScheduleOptions {
  TORCH_ARG(Schedule, type) = Schedule::kCosine;
  TORCH_ARG(int64_t, warmup_steps) = 0;
  TORCH_ARG(int64_t, step_epochs) = 10;
  TORCH_ARG(double, gamma) = 0.1;
  TORCH_ARG(double, power) = 0.9;
  TORCH_ARG(double, min_lr) = 0.0;
};

// The rate at optimizer step `step` (0-based) of `total_steps`.
double learning_rate(const ScheduleOptions& schedule, double base_lr, int64_t step, int64_t total_steps,
                     int64_t steps_per_epoch);

struct TrainerOptions {
  TORCH_ARG(int64_t, epochs) = 10;
  TORCH_ARG(OptimizerOptions, optimizer) = {};
  TORCH_ARG(ScheduleOptions, schedule) = {};
  TORCH_ARG(int64_t, accumulate) = 1;       // batches per optimizer step
  TORCH_ARG(double, clip_grad_norm) = 0.0;  // max global gradient norm; 0 = no clipping
  TORCH_ARG(Monitor, monitor) = Monitor::kMIoU;
  TORCH_ARG(int64_t, early_stopping) = 0;  // epochs without improvement before stopping; 0 = never
  // Checkpoints (<dir>/last, <dir>/best) and the epoch log (<dir>/log.csv or log.jsonl); "" = none.
  TORCH_ARG(std::string, output_dir) = "";
  TORCH_ARG(std::string, log_format) = "csv";  // "csv" or "jsonl"
  TORCH_ARG(std::optional<int64_t>, ignore_index) = std::nullopt;  // mask value that counts for nothing
  TORCH_ARG(bool, progress) = true;  // a bar on a terminal, plain lines otherwise
  TORCH_ARG(torch::Device, device) = torch::kCPU;
  // "float32", or "bfloat16": forward and backward under autocast to bfloat16 (matrix products and
  // convolutions in bfloat16), with float32 master weights, optimizer state and loss.
  TORCH_ARG(std::string, precision) = "float32";
  // Parameters and batches in channels-last memory format (oneDNN's fast convolution layout on CPU).
  TORCH_ARG(bool, channels_last) = false;
};

// The loss of one batch as the trainer computes it: images in channels-last format with
// options.channels_last(), the forward under autocast to bfloat16 with options.precision()
// "bfloat16", the loss in float32. Backward is the caller's.
torch::Tensor training_loss(SegmentationModelImpl& model, const losses::Loss& loss, const torch::Tensor& images,
                            const torch::Tensor& target, const TrainerOptions& options);
// Converts every 4-d parameter and buffer of `module` to channels-last memory format in place (the
// values, names and shapes stay; checkpoints are written contiguous as before).
void to_channels_last(torch::nn::Module& module);

// A seeded random split into (training part, held-out part) with `fraction` of the samples held
// out; throws when either part would be empty.
std::pair<std::shared_ptr<const data::Dataset>, std::shared_ptr<const data::Dataset>> split_dataset(
    std::shared_ptr<const data::Dataset> dataset, double fraction, uint64_t seed);

// Per-class scores over a whole dataset (confusion counts summed over every image first).
struct EvalResult {
  std::vector<double> iou, f1, precision, recall;
  double miou = 0, mf1 = 0, accuracy = 0;  // means over classes; pixel accuracy
  double loss = 0;                         // mean over batches; 0 without a loss
  int64_t images = 0;
};

// Runs the model (eval mode, no gradients, through predict() with `inference`) over every batch.
// classes == 1: binary masks (logit > 0); otherwise argmax over `classes` channels.
EvalResult evaluate(SegmentationModelImpl& model, data::Loader& loader, int64_t classes,
                    const losses::Loss& loss = nullptr, std::optional<int64_t> ignore_index = std::nullopt,
                    torch::Device device = torch::kCPU, const InferenceOptions& inference = {});
// The per-class table and the means, one row per class (names optional).
std::string format_eval_table(const EvalResult& result, const std::vector<std::string>& class_names = {});

struct EpochRecord {
  int64_t epoch = 0;  // 1-based
  double lr = 0, train_loss = 0, seconds = 0, images_per_second = 0;
  std::optional<EvalResult> val;
  bool best = false;
};

// Leaves LibTorch's global generator alone: seed it (torch::manual_seed) before building the model
// for reproducible initialisation and dropout; the loaders have seeds of their own.
class Trainer {
 public:
  Trainer(SegmentationModel model, losses::Loss loss, TrainerOptions options);
  // Continues from <output_dir>/last when it exists (model weights, optimizer, schedule, epoch,
  // best score, RNG); returns whether it did.
  bool resume();
  // Trains the remaining epochs, logging one line per epoch (info); `val` may be null (then "best"
  // is the last epoch).
  std::vector<EpochRecord> fit(data::Loader& train, data::Loader* val = nullptr);
  // Called after every optimizer step with its 1-based global number and the mean loss of its batches.
  std::function<void(int64_t step, double loss)> on_step;
  // Called at the end of every epoch, after its checkpoints and log line are written.
  std::function<void(const EpochRecord& record)> on_epoch;

  int64_t epoch() const { return epoch_; }
  int64_t step() const { return step_; }
  SegmentationModel model() const { return model_; }

 private:
  void save_checkpoint(const std::string& name) const;
  bool improved(const EpochRecord& record) const;

  SegmentationModel model_;
  losses::Loss loss_;
  TrainerOptions options_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  int64_t epoch_ = 0, step_ = 0, stale_epochs_ = 0;
  std::optional<double> best_;
};

}  // namespace smp::train
