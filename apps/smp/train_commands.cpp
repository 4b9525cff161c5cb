// `smp train`, `smp eval` and `smp demo`.
#include "commands.h"

#include "util/strings.h"

#include <smp/smp.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>

namespace smp::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Training settings with their defaults; a JSON config's "train" object and the flags override them.
// What the trainer takes comes with TrainerOptions' defaults (one source); the rest is the command's.
json default_settings() {
  const train::TrainerOptions t;
  const auto& opt = t.optimizer();
  const auto& sch = t.schedule();
  return {{"epochs", t.epochs()},
          {"optimizer", train::to_string(opt.type())},
          {"lr", opt.lr()},
          {"weight_decay", opt.weight_decay()},
          {"momentum", opt.momentum()},
          {"nesterov", opt.nesterov()},
          {"schedule", train::to_string(sch.type())},
          {"warmup_steps", sch.warmup_steps()},
          {"step_epochs", sch.step_epochs()},
          {"gamma", sch.gamma()},
          {"power", sch.power()},
          {"min_lr", sch.min_lr()},
          {"accumulate", t.accumulate()},
          {"clip_grad_norm", t.clip_grad_norm()},
          {"monitor", train::to_string(t.monitor())},
          {"early_stopping", t.early_stopping()},
          {"log_format", t.log_format()},
          {"ignore_index", t.ignore_index() ? json(*t.ignore_index()) : json(nullptr)},
          {"precision", t.precision()},
          {"channels_last", t.channels_last()},
          {"seed", uint64_t{0}},
          {"batch_size", 8},
          {"size", 256},
          {"workers", 2},
          {"val_split", 0.1},
          {"loss", "DiceLoss+CrossEntropy"}};
}

// The flags of `smp train`, each bound to a settings key; only flags given on the command line
// override the config file.
struct Flag {
  std::string key;
  CLI::Option* option;
  std::string text;
};

// A deque, since CLI11 keeps pointers to each Flag's text: growing must not move the elements.
void add_flags(CLI::App* app, std::deque<Flag>& flags) {
  const std::vector<std::pair<std::string, std::string>> described = {
      {"epochs", "Epochs to train"},
      {"batch_size", "Images per batch"},
      {"lr", "Peak learning rate"},
      {"weight_decay", "Weight decay"},
      {"optimizer", "adamw or sgd"},
      {"momentum", "SGD momentum"},
      {"nesterov", "SGD Nesterov momentum (true/false)"},
      {"schedule", "constant, step, poly or cosine"},
      {"warmup_steps", "Linear warmup steps"},
      {"step_epochs", "step schedule: epochs between decays"},
      {"gamma", "step schedule: decay factor"},
      {"power", "poly schedule: exponent"},
      {"min_lr", "cosine/poly: final learning rate"},
      {"accumulate", "Batches per optimizer step"},
      {"clip_grad_norm", "Max gradient norm (0 = off)"},
      {"monitor", "Best-checkpoint metric: miou, mf1, accuracy or loss"},
      {"early_stopping", "Stop after this many epochs without improvement (0 = never)"},
      {"seed", "Seed of shuffling, augmentation and initialisation"},
      {"size", "Training crop size (pixels, square)"},
      {"workers", "Data loading threads"},
      {"val_split", "Fraction of the training set held out when no validation data is given"},
      {"loss", "DiceLoss+CrossEntropy, or an smp loss class name (DiceLoss, FocalLoss, ...)"},
      {"log_format", "csv or jsonl"},
      {"ignore_index", "Mask value that counts for nothing"},
      {"precision", "float32, or bfloat16 (autocast: bfloat16 products, float32 weights and loss)"},
      {"channels_last", "Parameters and batches in channels-last memory format (true/false)"}};
  for (const auto& [key, help] : described) {
    flags.push_back({key, nullptr, ""});
    auto& flag = flags.back();
    std::string name = "--" + key;
    std::replace(name.begin(), name.end(), '_', '-');
    const auto default_value = default_settings()[key];
    flag.option = app->add_option(name, flag.text,
                                  help + " (default " + (default_value.is_null() ? "none" : default_value.dump()) + ")");
  }
}

// Each setting keeps the kind of value its default has (ignore_index: none or an integer), so a
// mistyped value is named here rather than failing deep inside.
void check_settings(const json& settings) {
  const auto defaults = default_settings();
  for (const auto& [key, value] : settings.items()) {
    const auto& want = defaults[key];
    const bool ok = key == "ignore_index" ? value.is_null() || value.is_number_integer()
                    : want.is_number_integer() ? value.is_number_integer() && value.get<int64_t>() >= 0
                    : want.is_number()         ? value.is_number()
                                               : value.type() == want.type();
    if (!ok)
      throw std::invalid_argument(fmt::format("train setting '{}' must be {}, got {}", key,
                                              key == "ignore_index"        ? "an integer"
                                              : want.is_number_integer()   ? "a whole number >= 0"
                                              : want.is_number()           ? "a number"
                                              : want.is_boolean()          ? "true or false"
                                                                           : "a string",
                                              value.dump()));
  }
}

// Words on the command line read as JSON where they parse (numbers, true/false), else as text.
json flag_value(const std::string& text) {
  auto v = json::parse(text, nullptr, false);
  return v.is_discarded() ? json(text) : v;
}

losses::Loss make_loss(const std::string& name, int64_t classes, const json& ignore_index) {
  const std::string mode = classes == 1 ? "binary" : "multiclass";
  json dice = {{"mode", mode}};
  if (!ignore_index.is_null()) dice["ignore_index"] = ignore_index;
  if (name == "DiceLoss+CrossEntropy") {
    json ce = classes == 1 ? json{{"class", "SoftBCEWithLogitsLoss"}, {"options", json::object()}, {"weight", 1.0}}
                           : json{{"class", "SoftCrossEntropyLoss"}, {"options", {{"smooth_factor", 0.0}}}, {"weight", 1.0}};
    if (!ignore_index.is_null()) ce["options"]["ignore_index"] = ignore_index;
    return losses::create_loss("CombinedLoss", json{{"losses", {{{"class", "DiceLoss"}, {"options", dice}, {"weight", 1.0}}, ce}}});
  }
  if (name == "DiceLoss" || name == "JaccardLoss" || name == "TverskyLoss" || name == "FocalLoss" || name == "LovaszLoss")
    return losses::create_loss(name, dice);
  return losses::create_loss(name);
}

struct DataArgs {
  std::string data, images, masks, csv, val_data, val_csv;
  void add(CLI::App* app, bool with_val) {
    app->add_option("--data", data, "Folder with images/ and masks/ subfolders (masks matched by file stem)");
    app->add_option("--images", images, "Images folder (with --masks)");
    app->add_option("--masks", masks, "Masks folder (with --images)");
    app->add_option("--csv", csv, "CSV list of image,mask pairs");
    if (with_val) {
      app->add_option("--val-data", val_data, "Validation folder with images/ and masks/");
      app->add_option("--val-csv", val_csv, "Validation CSV list");
    }
  }
};

std::shared_ptr<data::Dataset> open_dataset(const std::string& folder, const std::string& images,
                                            const std::string& masks, const std::string& csv) {
  if (!csv.empty()) return data::FileDataset::from_csv(csv);
  if (!folder.empty())
    return data::FileDataset::from_folders((fs::path(folder) / "images").string(), (fs::path(folder) / "masks").string());
  if (!images.empty() && !masks.empty()) return data::FileDataset::from_folders(images, masks);
  throw std::invalid_argument("no data: give --data DIR (with images/ and masks/), --images DIR --masks DIR, or --csv FILE");
}

data::Transform train_transform(const EncoderImpl& encoder, int64_t size) {
  return data::compose({data::random_scale_crop(size, size, 0.75, 1.25), data::hflip(), data::vflip(), data::rot90(),
                        data::color_jitter(0.2, 0.2, 0.02), data::normalize(encoder.mean(), encoder.std())});
}

data::Transform eval_transform(const EncoderImpl& encoder) {
  return data::compose({data::pad_to_multiple(encoder.output_stride()), data::normalize(encoder.mean(), encoder.std())});
}

train::TrainerOptions trainer_options(const json& s, const std::string& out) {
  train::TrainerOptions o;
  o.epochs(s["epochs"].get<int64_t>())
      .optimizer(train::OptimizerOptions()
                     .type(train::parse_optimizer(s["optimizer"].get<std::string>()))
                     .lr(s["lr"].get<double>())
                     .weight_decay(s["weight_decay"].get<double>())
                     .momentum(s["momentum"].get<double>())
                     .nesterov(s["nesterov"].get<bool>()))
      .schedule(train::ScheduleOptions()
                    .type(train::parse_schedule(s["schedule"].get<std::string>()))
                    .warmup_steps(s["warmup_steps"].get<int64_t>())
                    .step_epochs(s["step_epochs"].get<int64_t>())
                    .gamma(s["gamma"].get<double>())
                    .power(s["power"].get<double>())
                    .min_lr(s["min_lr"].get<double>()))
      .accumulate(s["accumulate"].get<int64_t>())
      .clip_grad_norm(s["clip_grad_norm"].get<double>())
      .monitor(train::parse_monitor(s["monitor"].get<std::string>()))
      .early_stopping(s["early_stopping"].get<int64_t>())
      .output_dir(out)
      .log_format(s["log_format"].get<std::string>())
      .precision(s["precision"].get<std::string>())
      .channels_last(s["channels_last"].get<bool>());
  if (!s["ignore_index"].is_null()) o.ignore_index(s["ignore_index"].get<int64_t>());
  return o;
}

}  // namespace

void add_train_command(CLI::App& app, std::function<int()>& run) {
  auto* cmd = app.add_subcommand("train", "Train a model on image/mask folders (checkpoints are smp folders)");
  struct Args {
    std::string arch, config, out = "runs/train";
    std::vector<std::string> words;
    bool resume = false;
    DataArgs data;
    std::deque<Flag> flags;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("arch", args->arch, "Architecture, e.g. Unet (or give it in --config)");
  cmd->add_option("options", args->words, "key=value model options, e.g. encoder_name=tu-resnet18 classes=4");
  cmd->add_option("--config", args->config,
                  "JSON file {\"arch\": ..., \"model\": {kwargs}, \"train\": {settings}}; the command line overrides it");
  cmd->add_option("--out", args->out, "Output folder: last/ and best/ checkpoints, log.csv");
  cmd->add_flag("--resume", args->resume, "Continue from <out>/last");
  args->data.add(cmd, true);
  add_flags(cmd, args->flags);
  const auto action = [args]() -> int {
    json config = json::object();
    if (!args->config.empty()) {
      std::ifstream in(args->config);
      if (!in) throw std::invalid_argument("cannot read the config file " + args->config);
      config = json::parse(in, nullptr, false);
      if (config.is_discarded() || !config.is_object())
        throw std::invalid_argument(args->config + " is not a JSON object");
    }
    auto settings = default_settings();
    const auto train_config = config.value("train", json::object());  // items() of a temporary would dangle
    for (const auto& [key, value] : train_config.items()) {
      if (!settings.contains(key)) {
        std::vector<std::string> known;
        for (const auto& item : settings.items()) known.push_back(item.key());
        throw std::invalid_argument(
            fmt::format("{}: unknown train setting '{}'.{}", args->config, key, util::did_you_mean(key, known)));
      }
      settings[key] = value;
    }
    for (const auto& flag : args->flags)
      if (flag.option->count()) settings[flag.key] = flag_value(flag.text);
    check_settings(settings);
    const auto arch = !args->arch.empty() ? args->arch : config.value("arch", std::string());
    if (arch.empty()) throw std::invalid_argument("no architecture: give it as the first word or as \"arch\" in --config");
    auto kwargs = config.value("model", json::object());
    kwargs.update(parse_words(args->words));
    // The seed covers initialisation too: LibTorch seeds its generator at random in every process.
    torch::manual_seed(settings["seed"].get<uint64_t>());
    auto model = create_model_from_kwargs(arch, kwargs);
    const auto classes = model->config().value("classes", int64_t{1});

    std::shared_ptr<const data::Dataset> train_set =
        open_dataset(args->data.data, args->data.images, args->data.masks, args->data.csv);
    std::shared_ptr<const data::Dataset> val_set;
    if (!args->data.val_data.empty() || !args->data.val_csv.empty()) {
      val_set = open_dataset(args->data.val_data, "", "", args->data.val_csv);
    } else if (settings["val_split"].get<double>() > 0) {
      auto [t, v] = train::split_dataset(train_set, settings["val_split"].get<double>(), settings["seed"].get<uint64_t>());
      train_set = t;
      val_set = v;
    }
    const auto seed = settings["seed"].get<uint64_t>();
    const auto batch = settings["batch_size"].get<int64_t>();
    data::Loader train_loader(train_set, train_transform(model->encoder(), settings["size"].get<int64_t>()),
                              data::LoaderOptions().batch_size(batch).seed(seed).workers(settings["workers"].get<int64_t>()));
    std::unique_ptr<data::Loader> val_loader;
    if (val_set)
      val_loader = std::make_unique<data::Loader>(
          val_set, eval_transform(model->encoder()),
          data::LoaderOptions().batch_size(batch).shuffle(false).workers(settings["workers"].get<int64_t>()));
    train::Trainer trainer(model, make_loss(settings["loss"].get<std::string>(), classes, settings["ignore_index"]),
                           trainer_options(settings, args->out));
    if (args->resume && !trainer.resume())
      throw std::invalid_argument("--resume: nothing to resume in " + args->out + "/last");
    if (args->resume) std::cout << fmt::format("resuming after epoch {}", trainer.epoch()) << std::endl;
    fs::create_directories(args->out);
    std::ofstream(fs::path(args->out) / "train_settings.json") << json{{"arch", arch}, {"model", kwargs}, {"train", settings}}.dump(2) << "\n";
    trainer.fit(train_loader, val_loader.get());
    const auto summary = train_loader.summary();
    if (summary.skipped > 0)
      std::cout << fmt::format("skipped {} unreadable samples: {}", summary.skipped, fmt::join(summary.skip_reasons, "; "))
                << std::endl;
    std::cout << fmt::format("checkpoints in {}/best and {}/last", args->out, args->out) << std::endl;
    return 0;
  };
  cmd->callback([&run, action] { run = action; });
}

void add_eval_command(CLI::App& app, std::function<int()>& run) {
  auto* cmd = app.add_subcommand("eval", "Per-class IoU/F1/precision/recall of a checkpoint on a labelled folder");
  struct Args {
    std::string model;
    DataArgs data;
    int64_t batch_size = 1, workers = 2;
    std::optional<int64_t> ignore_index;
    std::string dtype = "float32";
    bool eager = false;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("--model", args->model, "Checkpoint folder (config.json + model.safetensors)")->required();
  cmd->add_option("--dtype", args->dtype, "Inference precision: float32 or bfloat16")->capture_default_str();
  cmd->add_flag("--eager", args->eager, "Run the plain eager forward instead of the compiled inference path");
  args->data.add(cmd, false);
  cmd->add_option("--batch-size", args->batch_size, "Images per batch (images of one batch must share a size)");
  cmd->add_option("--workers", args->workers, "Data loading threads");
  cmd->add_option("--ignore-index", args->ignore_index, "Mask value that counts for nothing");
  const auto action = [args]() -> int {
    auto model = from_pretrained(args->model);
    auto dataset = open_dataset(args->data.data, args->data.images, args->data.masks, args->data.csv);
    data::Loader loader(dataset, eval_transform(model->encoder()),
                        data::LoaderOptions().batch_size(args->batch_size).shuffle(false).workers(args->workers));
    const auto classes = model->config().value("classes", int64_t{1});
    const auto inference = InferenceOptions().optimize(!args->eager).dtype(parse_inference_dtype(args->dtype));
    auto result = train::evaluate(*model, loader, classes, nullptr, args->ignore_index, torch::kCPU, inference);
    std::cout << train::format_eval_table(result);
    const auto summary = loader.summary();
    if (summary.skipped > 0)
      std::cout << fmt::format("skipped {} unreadable samples: {}\n", summary.skipped, fmt::join(summary.skip_reasons, "; "));
    return 0;
  };
  cmd->callback([&run, action] { run = action; });
}

}  // namespace smp::cli

namespace smp::cli {

void add_demo_command(CLI::App& app, std::function<int()>& run) {
  auto* cmd = app.add_subcommand(
      "demo", "Train a Unet from scratch on generated shapes, evaluate it and write overlays of validation images");
  struct Args {
    std::string out = "demo_output";
    int64_t epochs = 6, train_images = 400, val_images = 64, size = 128, batch_size = 8;
    std::string encoder = "tu-resnet18";
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("--out", args->out, "Output folder (checkpoint, log, overlays)");
  cmd->add_option("--epochs", args->epochs, "Training epochs");
  cmd->add_option("--train-images", args->train_images, "Generated training images");
  cmd->add_option("--val-images", args->val_images, "Generated validation images");
  cmd->add_option("--size", args->size, "Image size (pixels, square)");
  cmd->add_option("--batch-size", args->batch_size, "Images per batch");
  cmd->add_option("--encoder", args->encoder, "Encoder name");
  const auto action = [args]() -> int {
    const auto start = std::chrono::steady_clock::now();
    const auto classes = data::SyntheticDataset::kClasses;
    torch::manual_seed(1);  // the demo's figures are the same on every run
    auto model = create_model("Unet", {"encoder_name=" + args->encoder, "classes=" + std::to_string(classes)});
    std::cout << model->encoder().features_info_str() << "\n";
    auto shapes = [&args](int64_t count, uint64_t seed) {
      return data::SyntheticOptions().count(count).height(args->size).width(args->size).seed(seed);
    };
    auto train_set = std::make_shared<data::SyntheticDataset>(shapes(args->train_images, 1));
    auto val_set = std::make_shared<data::SyntheticDataset>(shapes(args->val_images, 2));
    // The validation images as files too, for trying `smp eval` and `smp predict` on the result.
    const auto val_folder = fs::path(args->out) / "val";
    data::write_synthetic(val_folder.string(), shapes(args->val_images, 2));
    const auto& enc = model->encoder();
    data::Loader train_loader(train_set,
                              data::compose({data::hflip(), data::vflip(), data::rot90(), data::color_jitter(0.1, 0.1, 0.0),
                                             data::normalize(enc.mean(), enc.std())}),
                              data::LoaderOptions().batch_size(args->batch_size).seed(1).workers(1));
    data::Loader val_loader(val_set, data::normalize(enc.mean(), enc.std()),
                            data::LoaderOptions().batch_size(args->batch_size).shuffle(false).workers(1));
    std::cout << fmt::format("Training Unet({}) from scratch on {} generated {}x{} images (shapes: circle, square, "
                             "triangle), {} epochs\n",
                             args->encoder, args->train_images, args->size, args->size, args->epochs);
    train::Trainer trainer(model, make_loss("DiceLoss+CrossEntropy", classes, nullptr),
                           train::TrainerOptions()
                               .epochs(args->epochs)
                               .optimizer(train::OptimizerOptions().lr(3e-3))
                               .schedule(train::ScheduleOptions().type(train::Schedule::kCosine).warmup_steps(20))
                               .output_dir(args->out));
    trainer.fit(train_loader, &val_loader);
    auto result = train::evaluate(*model, val_loader, classes);
    std::cout << "\n" << train::format_eval_table(result, {"background", "circle", "square", "triangle"});
    // Overlays of the first validation images.
    const auto overlays = fs::path(args->out) / "overlays";
    fs::create_directories(overlays);
    model->eval();
    constexpr int64_t kOverlays = 8;
    for (int64_t i = 0; i < std::min<int64_t>(kOverlays, val_set->size()); ++i) {
      auto sample = val_set->get(i);
      auto input = data::load_sample(*val_set, data::normalize(enc.mean(), enc.std()), i, 0, 0).image;
      auto mask = model->predict(input.unsqueeze(0)).mask.argmax(1)[0];
      image::write_rgb((overlays / fmt::format("{:03d}_overlay.png", i)).string(), render_overlay(sample.image, mask));
    }
    const auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << fmt::format("demo: validation mIoU {:.3f} (target 0.75) in {}:{:02d} on {} threads; overlays in {}\n",
                             result.miou, static_cast<int64_t>(seconds) / 60, static_cast<int64_t>(seconds) % 60,
                             torch::get_num_threads(), overlays.string());
    const auto best = (fs::path(args->out) / "best").string();
    std::cout << fmt::format("next: smp eval --model {} --data {}\n      smp predict --model {} --input {} --output {}\n",
                             best, val_folder.string(), best, (val_folder / "images").string(),
                             (fs::path(args->out) / "predictions").string());
    return 0;
  };
  cmd->callback([&run, action] { run = action; });
}

}  // namespace smp::cli
