// Trainer: schedules, option names, a short run whose loss falls, checkpoints that are smp folders,
// per-epoch reports, and resume after an interruption continuing with the same losses as an
// uninterrupted run.
#include <smp/log.h>
#include <smp/smp.h>
#include <smp/train.h>

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <set>

namespace {

namespace fs = std::filesystem;
using smp::train::Schedule;
using smp::train::ScheduleOptions;

fs::path fresh_dir(const std::string& name) {
  auto dir = fs::temp_directory_path() / ("smp_test_train_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  return dir;
}

// A small Unet that still trains in a few seconds on 2 cores.
smp::SegmentationModel synthetic_unet() {
  torch::manual_seed(0);
  return smp::create_model("Unet", {"encoder_name=resnet18", "encoder_depth=3", "decoder_channels=[32,16,8]",
                                    "classes=" + std::to_string(smp::data::SyntheticDataset::kClasses)});
}

std::shared_ptr<const smp::data::Dataset> shapes(int64_t count) {
  return std::make_shared<smp::data::SyntheticDataset>(
      smp::data::SyntheticOptions().count(count).height(64).width(64).seed(3));
}

smp::losses::Loss dice_loss() { return smp::losses::create_loss("DiceLoss", nlohmann::json{{"mode", "multiclass"}}); }

smp::train::TrainerOptions quiet(int64_t epochs, const fs::path& out = {}) {
  return smp::train::TrainerOptions()
      .epochs(epochs)
      .optimizer(smp::train::OptimizerOptions().lr(3e-3))
      .schedule(ScheduleOptions().type(Schedule::kConstant))
      .output_dir(out.string())
      .progress(false);
}

smp::data::LoaderOptions loader_options() { return smp::data::LoaderOptions().batch_size(4).seed(9).workers(1); }

TEST(Schedule, WarmupThenEachShape) {
  const double lr = 0.1;
  // 10 steps per epoch, 100 in all, 10 of warmup.
  auto s = ScheduleOptions().warmup_steps(10);
  EXPECT_DOUBLE_EQ(smp::train::learning_rate(s, lr, 0, 100, 10), 0.01);
  EXPECT_DOUBLE_EQ(smp::train::learning_rate(s, lr, 9, 100, 10), 0.1);
  // Cosine: the top right after warmup, half-way at the middle of the rest, min_lr at the end.
  EXPECT_DOUBLE_EQ(smp::train::learning_rate(s.type(Schedule::kCosine), lr, 10, 100, 10), 0.1);
  EXPECT_NEAR(smp::train::learning_rate(s.type(Schedule::kCosine), lr, 55, 100, 10), 0.05, 1e-12);
  EXPECT_NEAR(smp::train::learning_rate(s.type(Schedule::kCosine).min_lr(0.02), lr, 100, 100, 10), 0.02, 1e-12);
  // Poly with power 1 is linear.
  EXPECT_NEAR(smp::train::learning_rate(ScheduleOptions().type(Schedule::kPoly).power(1.0), lr, 25, 100, 10), 0.075,
              1e-12);
  // Step: times gamma every step_epochs epochs.
  auto step = ScheduleOptions().type(Schedule::kStep).step_epochs(3).gamma(0.5);
  EXPECT_DOUBLE_EQ(smp::train::learning_rate(step, lr, 29, 100, 10), 0.1);
  EXPECT_DOUBLE_EQ(smp::train::learning_rate(step, lr, 30, 100, 10), 0.05);
  EXPECT_DOUBLE_EQ(smp::train::learning_rate(step, lr, 65, 100, 10), 0.025);
  EXPECT_DOUBLE_EQ(smp::train::learning_rate(ScheduleOptions().type(Schedule::kConstant), lr, 77, 100, 10), 0.1);
}

// The message of the std::invalid_argument that `parse` throws, or "" when it throws none.
template <typename Parse>
std::string invalid_argument_message(Parse parse) {
  try {
    parse();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(OptionNames, ParseTheCommandLineNamesAndListTheValidOnes) {
  using namespace smp::train;
  // The names the command line and configs have always used, both ways.
  for (const auto& [name, value] : std::vector<std::pair<std::string, Optimizer>>{{"adamw", Optimizer::kAdamW},
                                                                                  {"sgd", Optimizer::kSGD}}) {
    EXPECT_EQ(parse_optimizer(name), value);
    EXPECT_EQ(to_string(value), name);
  }
  for (const auto& [name, value] : std::vector<std::pair<std::string, Schedule>>{
           {"constant", Schedule::kConstant}, {"step", Schedule::kStep}, {"poly", Schedule::kPoly},
           {"cosine", Schedule::kCosine}}) {
    EXPECT_EQ(parse_schedule(name), value);
    EXPECT_EQ(to_string(value), name);
  }
  for (const auto& [name, value] : std::vector<std::pair<std::string, Monitor>>{
           {"miou", Monitor::kMIoU}, {"mf1", Monitor::kMF1}, {"accuracy", Monitor::kAccuracy},
           {"loss", Monitor::kLoss}}) {
    EXPECT_EQ(parse_monitor(name), value);
    EXPECT_EQ(to_string(value), name);
  }
  EXPECT_EQ(invalid_argument_message([] { parse_optimizer("adam_w"); }),
            "optimizer must be one of adamw, sgd; got 'adam_w'");
  EXPECT_EQ(invalid_argument_message([] { parse_schedule("linear"); }),
            "schedule must be one of constant, step, poly, cosine; got 'linear'");
  EXPECT_EQ(invalid_argument_message([] { parse_monitor("iou"); }),
            "monitor must be one of miou, mf1, accuracy, loss; got 'iou'");
}

TEST(SplitDataset, SeededDisjointAndComplete) {
  auto data = shapes(20);
  auto [train, val] = smp::train::split_dataset(data, 0.25, 4);
  ASSERT_EQ(train->size(), 15);
  ASSERT_EQ(val->size(), 5);
  std::set<std::string> names;
  for (int64_t i = 0; i < train->size(); ++i) names.insert(train->get(i).name);
  for (int64_t i = 0; i < val->size(); ++i) names.insert(val->get(i).name);
  EXPECT_EQ(names.size(), 20u);
  auto [train2, val2] = smp::train::split_dataset(data, 0.25, 4);
  EXPECT_EQ(val2->get(0).name, val->get(0).name);
  EXPECT_THROW(smp::train::split_dataset(data, 0.0, 4), std::invalid_argument);
}

TEST(Trainer, ShortRunLossFallsAndWritesSmpCheckpoints) {
  const auto out = fresh_dir("fit");
  auto model = synthetic_unet();
  smp::data::Loader train(shapes(16), {}, loader_options());
  smp::data::Loader val(shapes(8), {}, loader_options().shuffle(false));
  smp::train::Trainer trainer(model, dice_loss(), quiet(4, out));
  const auto records = trainer.fit(train, &val);
  ASSERT_EQ(records.size(), 4u);
  EXPECT_LT(records.back().train_loss, 0.9 * records.front().train_loss);
  ASSERT_TRUE(records.back().val.has_value());
  EXPECT_EQ(records.back().val->iou.size(), 4u);
  EXPECT_EQ(trainer.step(), 16);  // 4 batches x 4 epochs

  // last/ is an smp folder: it loads on its own and gives the trained model's output.
  for (const char* file : {"config.json", "model.safetensors", "trainer_state.pt"})
    EXPECT_TRUE(fs::exists(out / "last" / file)) << file;
  EXPECT_TRUE(fs::exists(out / "best" / "model.safetensors"));
  EXPECT_TRUE(fs::exists(out / "log.csv"));
  auto reloaded = smp::from_pretrained((out / "last").string());
  const auto x = torch::randn({1, 3, 64, 64});
  model->eval();
  EXPECT_TRUE(torch::equal(model->predict(x).mask, reloaded->predict(x).mask));
  fs::remove_all(out);
}

TEST(Trainer, ResumeAfterAnInterruptionContinuesWithTheSameLosses) {
  std::vector<double> uninterrupted;
  {
    smp::data::Loader train(shapes(12), {}, loader_options());
    smp::train::Trainer trainer(synthetic_unet(), dice_loss(), quiet(3));
    trainer.on_step = [&](int64_t, double loss) { uninterrupted.push_back(loss); };
    trainer.fit(train);
  }
  ASSERT_EQ(uninterrupted.size(), 9u);

  const auto out = fresh_dir("resume");
  struct Interrupted {};
  {
    smp::data::Loader train(shapes(12), {}, loader_options());
    smp::train::Trainer trainer(synthetic_unet(), dice_loss(), quiet(3, out));
    trainer.on_step = [](int64_t step, double) {
      if (step == 5) throw Interrupted{};  // in the middle of the second epoch
    };
    EXPECT_THROW(trainer.fit(train), Interrupted);
  }
  std::vector<double> resumed;
  {
    smp::data::Loader train(shapes(12), {}, loader_options());
    // A differently initialised model: everything must come from the checkpoint.
    torch::manual_seed(123);
    auto other = smp::create_model("Unet", {"encoder_name=resnet18", "encoder_depth=3", "decoder_channels=[32,16,8]",
                                            "classes=4"});
    smp::train::Trainer trainer(other, dice_loss(), quiet(3, out));
    ASSERT_TRUE(trainer.resume());
    EXPECT_EQ(trainer.epoch(), 1);
    EXPECT_EQ(trainer.step(), 3);
    trainer.on_step = [&](int64_t, double loss) { resumed.push_back(loss); };
    trainer.fit(train);
  }
  ASSERT_EQ(resumed.size(), 6u);
  for (size_t i = 0; i < resumed.size(); ++i)
    EXPECT_NEAR(resumed[i], uninterrupted[3 + i], 1e-5 * std::abs(uninterrupted[3 + i])) << "step " << 4 + i;
  fs::remove_all(out);
}

TEST(Trainer, ResumeWithoutACheckpointSaysSo) {
  const auto out = fresh_dir("empty");
  smp::train::Trainer trainer(synthetic_unet(), dice_loss(), quiet(1, out));
  EXPECT_FALSE(trainer.resume());
}

TEST(Trainer, OnEpochReportsEveryEpochInOrderAndLogsItsLine) {
  smp::data::Loader train(shapes(8), {}, loader_options());
  smp::data::Loader val(shapes(4), {}, loader_options().shuffle(false));
  smp::train::Trainer trainer(synthetic_unet(), dice_loss(), quiet(3));
  std::vector<smp::train::EpochRecord> reported;
  trainer.on_epoch = [&](const smp::train::EpochRecord& record) { reported.push_back(record); };
  smp::log::Capture capture;
  testing::internal::CaptureStdout();
  const auto records = trainer.fit(train, &val);
  EXPECT_EQ(testing::internal::GetCapturedStdout(), "");
  ASSERT_EQ(reported.size(), 3u);
  ASSERT_EQ(records.size(), 3u);
  for (size_t i = 0; i < reported.size(); ++i) {
    EXPECT_EQ(reported[i].epoch, static_cast<int64_t>(i) + 1);
    EXPECT_EQ(reported[i].train_loss, records[i].train_loss);
    EXPECT_TRUE(std::isfinite(reported[i].train_loss)) << "epoch " << i + 1;
    ASSERT_TRUE(reported[i].val.has_value());
    EXPECT_TRUE(std::isfinite(reported[i].val->loss)) << "epoch " << i + 1;
    EXPECT_TRUE(std::isfinite(reported[i].val->miou)) << "epoch " << i + 1;
  }
  // One info line per epoch through the library's logger.
  std::vector<std::string> epoch_lines;
  for (const auto& [level, message] : capture.lines())
    if (level == "INFO" && message.rfind("epoch ", 0) == 0) epoch_lines.push_back(message);
  ASSERT_EQ(epoch_lines.size(), 3u);
  EXPECT_EQ(epoch_lines[2].rfind("epoch 3/3  lr ", 0), 0u) << epoch_lines[2];
}

TEST(Trainer, ConstructionLeavesTheGlobalGeneratorAlone) {
  auto model = synthetic_unet();
  torch::manual_seed(42);
  const auto expected = torch::rand({16});
  torch::manual_seed(42);
  smp::train::Trainer trainer(model, dice_loss(), quiet(1));
  EXPECT_TRUE(torch::equal(torch::rand({16}), expected));
}

TEST(Evaluate, ScoresEqualCountsOverTheWholeDataset) {
  // Per-class IoU and pixel accuracy of evaluate() against intersections and unions counted here.
  auto model = synthetic_unet();
  model->eval();
  smp::data::Loader loader(shapes(8), {}, loader_options().shuffle(false));
  const auto result = smp::train::evaluate(*model, loader, 4);
  ASSERT_EQ(result.images, 8);
  std::vector<double> intersection(4), union_(4);
  double correct = 0, pixels = 0;
  loader.start_epoch(0);
  torch::NoGradGuard no_grad;
  while (auto batch = loader.next()) {
    const auto predicted = model->forward(batch->images).argmax(1);
    for (int64_t c = 0; c < 4; ++c) {
      intersection[c] += ((predicted == c) & (batch->masks == c)).sum().item<double>();
      union_[c] += ((predicted == c) | (batch->masks == c)).sum().item<double>();
    }
    correct += (predicted == batch->masks).sum().item<double>();
    pixels += static_cast<double>(predicted.numel());
  }
  double mean = 0;
  for (int64_t c = 0; c < 4; ++c) {
    const double iou = union_[c] > 0 ? intersection[c] / union_[c] : 1.0;
    EXPECT_NEAR(result.iou[c], iou, 1e-9) << "class " << c;
    mean += iou / 4;
  }
  EXPECT_NEAR(result.miou, mean, 1e-9);
  EXPECT_NEAR(result.accuracy, correct / pixels, 1e-9);
  const auto table = smp::train::format_eval_table(result, {"background", "circle", "square", "triangle"});
  for (const char* name : {"background", "circle", "square", "triangle"}) EXPECT_NE(table.find(name), std::string::npos);
}

}  // namespace
