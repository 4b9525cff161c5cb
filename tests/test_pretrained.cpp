// save_pretrained / from_pretrained folders (smp's hub mixin layout) and torch.save state dicts.
//
// tests/data/checkpoints/*.pth were written by /usr/bin/python3 with Debian's torch 1.13:
//   m = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3))
//   every float tensor of m.state_dict() := arange(numel).reshape(shape) * 0.5 - 1; num_batches_tracked := 7
//   torch.save(sd, "state_dict.pth"); torch.save(sd, "state_dict_protocol4.pth", pickle_protocol=4)
//   torch.save({"epoch": 3, "state_dict": sd, "name": "run", "flags": [True, False, None], "raw": b"ab",
//               "optimizer": {"state": {0: {"step": 5, "exp_avg": torch.ones(2)}},
//                             "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0, 1]}]}},
//              "checkpoint.pth")
//   t = torch.arange(24, dtype=torch.float32).reshape(4, 6) / 4 - 2
//   torch.save(OrderedDict(base=t, row=t[1], col=t[:, 2], transposed=t.t(), half=t.half(), bf16=t.bfloat16(),
//              f64=t.double(), i64=arange(-2, 3), i32/i16/i8 = arange(-2, 3) in that dtype,
//              u8=arange(0, 250, 50, dtype=uint8), bool=t > 0, scalar=tensor(2.5), empty=zeros(0, 3),
//              param=Parameter(full((2,), 0.25))), "dtypes_views.pth")
#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>
#include <smp/fill.h>
#include <smp/smp.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "io/torch_pickle.h"
#include "support.h"

using namespace smp::test;
using namespace std::string_literals;

namespace {

namespace fs = std::filesystem;

const fs::path kData = SMP_TEST_DATA;
const fs::path kUnetFolder = kData / "fixtures/checkpoints/unet_resnet18_depth3";

void write_text(const fs::path& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

// The shared checkpoint's model: Unet on tu-resnet18, depth 3.
void expect_same_tensors(const smp::io::TensorMap& a, const smp::io::TensorMap& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) {
    ASSERT_TRUE(b.count(name)) << name;
    EXPECT_EQ(t.scalar_type(), b.at(name).scalar_type()) << name;
    EXPECT_TRUE(torch::equal(t, b.at(name))) << name;
  }
}

void expect_error_mentions(const std::function<void()>& fn, const std::vector<std::string>& fragments) {
  const auto msg = error_of(fn);
  for (const auto& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << "'" << f << "' not in: " << msg;
}

// The data.pkl of a torch.save file, for feeding the unpickler directly.
std::string pickle_of(const fs::path& file) {
  caffe2::serialize::PyTorchStreamReader reader(file.string());
  auto [ptr, size] = reader.getRecord("data.pkl");
  return std::string(static_cast<const char*>(ptr.get()), size);
}

smp::io::TensorMap unpickle(const std::string& pickle, const std::string& key = "") {
  const smp::io::detail::StorageLoader zeros = [](const std::string&, torch::Dtype dtype, int64_t numel) {
    if (numel > (1 << 20)) throw std::runtime_error("storage too large for this test");
    return torch::zeros({numel}, torch::TensorOptions().dtype(dtype));
  };
  return smp::io::detail::unpickle_state_dict(pickle.data(), pickle.size(), zeros, key, "test.pkl");
}

// A torch.save-style archive holding `pickle` as data.pkl and the given storages.
void write_archive(const fs::path& path, const std::string& pickle,
                   const std::vector<std::pair<std::string, std::string>>& records = {}) {
  caffe2::serialize::PyTorchStreamWriter writer(path.string());
  writer.writeRecord("data.pkl", pickle.data(), pickle.size());
  for (const auto& [name, bytes] : records) writer.writeRecord(name, bytes.data(), bytes.size());
  writer.writeEndOfFile();
}

// Expected values of tests/data/checkpoints/state_dict.pth (see the script above).
torch::Tensor ramp(std::vector<int64_t> shape) {
  int64_t n = 1;
  for (auto s : shape) n *= s;
  return (torch::arange(n, torch::kFloat32) * 0.5 - 1).reshape(shape);
}

void expect_small_state_dict(const smp::io::TensorMap& sd) {
  ASSERT_EQ(sd.size(), 7u);
  EXPECT_TRUE(torch::equal(sd.at("0.weight"), ramp({3, 2, 3, 3})));
  EXPECT_TRUE(torch::equal(sd.at("0.bias"), ramp({3})));
  for (const char* k : {"1.weight", "1.bias", "1.running_mean", "1.running_var"})
    EXPECT_TRUE(torch::equal(sd.at(k), ramp({3}))) << k;
  EXPECT_EQ(sd.at("1.num_batches_tracked").scalar_type(), torch::kInt64);
  EXPECT_EQ(sd.at("1.num_batches_tracked").dim(), 0);
  EXPECT_EQ(sd.at("1.num_batches_tracked").item<int64_t>(), 7);
}

}  // namespace

// ---- from_pretrained / save_pretrained ----

TEST(Pretrained, PythonFolderLoadsAsSaved) {
  auto model = smp::from_pretrained(kUnetFolder.string());
  EXPECT_EQ(model->arch(), "Unet");
  EXPECT_FALSE(model->is_training());
  auto config = nlohmann::json::parse(read_text(kUnetFolder / "config.json"));
  config.erase("_model_class");
  EXPECT_EQ(model->config(), config);
  // Every tensor equals the file's (no fill, no conversion: the file is float32).
  const auto file = smp::io::read_safetensors((kUnetFolder / "model.safetensors").string());
  EXPECT_EQ(file.metadata.at("format"), "pt");
  expect_same_tensors(smp::io::state_dict(*model), file.tensors);
}

TEST(Pretrained, SaveWritesWhatSmpWrites) {
  TempDir dir;
  // Re-saving the Python folder reproduces its config.json byte for byte.
  smp::from_pretrained(kUnetFolder.string())->save_pretrained(dir.path.string());
  EXPECT_EQ(read_text(dir.path / "config.json"), read_text(kUnetFolder / "config.json"));
  const auto file = smp::io::read_safetensors((dir.path / "model.safetensors").string());
  EXPECT_EQ(file.metadata, (std::map<std::string, std::string>{{"format", "pt"}}));
  expect_same_tensors(file.tensors, smp::io::read_safetensors((kUnetFolder / "model.safetensors").string()).tensors);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir.path)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"README.md", "config.json", "model.safetensors"}));

  // json.dumps(config, sort_keys=True, indent=2) of this model's keyword arguments, from Python.
  auto model = smp::Unet(smp::UnetOptions()
                             .encoder_name("tu-resnet18")
                             .encoder_depth(3)
                             .decoder_channels({64, 32, 16})
                             .decoder_attention_type("scse")
                             .classes(2)
                             .aux_params(smp::AuxParams().classes(4).dropout(0.5)));
  const auto sub = dir.path / "nested" / "aux";  // missing parents are created
  model->save_pretrained(sub.string());
  EXPECT_EQ(read_text(sub / "config.json"), R"({
  "_model_class": "Unet",
  "activation": null,
  "aux_params": {
    "activation": null,
    "classes": 4,
    "dropout": 0.5,
    "pooling": "avg"
  },
  "classes": 2,
  "decoder_attention_type": "scse",
  "decoder_channels": [
    64,
    32,
    16
  ],
  "decoder_interpolation": "nearest",
  "decoder_use_norm": "batchnorm",
  "encoder_depth": 3,
  "encoder_name": "tu-resnet18",
  "encoder_weights": null,
  "in_channels": 3
})");
}

TEST(Pretrained, RoundTripKeepsTensorsAndConfig) {
  TempDir dir;
  auto model = smp::create_model("Linknet", {"encoder_name=tu-resnet18", "encoder_depth=3", "classes=3",
                                             "aux_params={\"classes\": 2}"});
  smp::fill::fill_module(*model);
  model->save_pretrained(dir.path.string());
  auto loaded = smp::from_pretrained(dir.path.string());
  EXPECT_EQ(loaded->arch(), "Linknet");
  EXPECT_EQ(loaded->config(), model->config());
  const auto a = smp::io::state_dict(*model), b = smp::io::state_dict(*loaded);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) {
    const auto& u = b.at(name);
    ASSERT_EQ(t.sizes(), u.sizes()) << name;
    EXPECT_EQ(0, std::memcmp(t.data_ptr(), u.contiguous().data_ptr(), t.numel() * t.element_size())) << name;
  }
  // Saving over an existing folder replaces both files.
  loaded->save_pretrained(dir.path.string());
  EXPECT_FALSE(fs::exists(dir.path / "model.safetensors.tmp"));
  EXPECT_EQ(smp::from_pretrained(dir.path.string())->config(), model->config());
}

TEST(Pretrained, OverridesRebuildTheHeadsAndKeepTheRest) {
  // The shared checkpoint has 2 classes and no aux head: 5 classes plus an aux head give new heads,
  // every other tensor is the file's.
  auto model = smp::from_pretrained(kUnetFolder.string(), {{"classes", 5}, {"aux_params", {{"classes", 3}}}});
  EXPECT_EQ(model->config()["classes"], 5);
  EXPECT_EQ(model->config()["aux_params"]["classes"], 3);
  const auto out = model->forward_all(torch::rand({1, 3, 64, 64}));
  EXPECT_EQ(out.mask.sizes(), (std::vector<int64_t>{1, 5, 64, 64}));
  EXPECT_EQ(out.label.sizes(), (std::vector<int64_t>{1, 3}));
  const auto file = smp::io::read_safetensors((kUnetFolder / "model.safetensors").string()).tensors;
  const auto loaded = smp::io::state_dict(*model);
  size_t from_file = 0;
  for (const auto& [name, t] : file) {
    if (name.rfind("segmentation_head.", 0) == 0) {
      EXPECT_NE(loaded.at(name).sizes(), t.sizes()) << name;
      continue;
    }
    EXPECT_TRUE(torch::equal(loaded.at(name), t.to(loaded.at(name).dtype()))) << name;
    ++from_file;
  }
  EXPECT_GT(from_file, 50u);
  // Without overrides nothing changes; a keyword the architecture lacks is refused by name.
  EXPECT_EQ(smp::from_pretrained(kUnetFolder.string(), nlohmann::json::object())->config()["classes"], 2);
  try {
    smp::from_pretrained(kUnetFolder.string(), {{"clases", 5}});
    FAIL() << "an unknown override was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'clases'"), std::string::npos) << e.what();
  }
}

TEST(Pretrained, HalfPrecisionFilesLoadIntoFloatModels) {
  TempDir dir;
  fs::copy_file(kUnetFolder / "config.json", dir.path / "config.json");
  const auto source = smp::io::read_safetensors((kUnetFolder / "model.safetensors").string()).tensors;
  for (auto dtype : {torch::kFloat16, torch::kBFloat16}) {
    smp::io::TensorMap reduced;
    for (const auto& [name, t] : source) reduced[name] = t.is_floating_point() ? t.to(dtype) : t;
    smp::io::write_safetensors((dir.path / "model.safetensors").string(), reduced, {{"format", "pt"}});
    auto model = smp::from_pretrained(dir.path.string());
    for (const auto& [name, t] : smp::io::state_dict(*model)) {
      EXPECT_EQ(t.scalar_type(), source.at(name).scalar_type()) << name;
      EXPECT_TRUE(torch::equal(t, reduced.at(name).to(t.scalar_type()))) << name;
    }
  }
}

TEST(Pretrained, TorchSaveFolderLoadsToo) {
  // Folders from older huggingface_hub versions hold pytorch_model.bin instead of model.safetensors.
  TempDir dir;
  fs::copy_file(kUnetFolder / "config.json", dir.path / "config.json");
  fs::copy_file(kUnetFolder / "pytorch_model.bin", dir.path / "pytorch_model.bin");
  auto model = smp::from_pretrained(dir.path.string());
  expect_same_tensors(smp::io::state_dict(*model),
                      smp::io::read_safetensors((kUnetFolder / "model.safetensors").string()).tensors);
}

TEST(Pretrained, StrictLoadingListsEveryProblem) {
  TempDir dir;
  fs::copy_file(kUnetFolder / "config.json", dir.path / "config.json");
  auto tensors = smp::io::read_safetensors((kUnetFolder / "model.safetensors").string()).tensors;
  tensors.erase("decoder.blocks.0.conv1.0.weight");
  tensors["decoder.extra.weight"] = torch::zeros({2});
  tensors["segmentation_head.0.bias"] = torch::zeros({5});
  smp::io::write_safetensors((dir.path / "model.safetensors").string(), tensors);
  expect_error_mentions([&] { smp::from_pretrained(dir.path.string()); },
                        {(dir.path / "model.safetensors").string(), "Unet", "missing keys",
                         "decoder.blocks.0.conv1.0.weight", "unexpected keys", "decoder.extra.weight",
                         "segmentation_head.0.bias: checkpoint [5] vs model [2]"});
  // strict=false loads what fits and leaves the rest as built.
  auto model = smp::from_pretrained(dir.path.string(), /*strict=*/false);
  const auto sd = smp::io::state_dict(*model);
  EXPECT_TRUE(torch::equal(sd.at("decoder.blocks.1.conv1.0.weight"), tensors.at("decoder.blocks.1.conv1.0.weight")));
  EXPECT_EQ(sd.at("segmentation_head.0.bias").size(0), 2);
}

TEST(Pretrained, ConfigKeysAsSmpReadsThem) {
  TempDir dir;
  auto config = nlohmann::json::parse(read_text(kUnetFolder / "config.json"));
  // Keys starting with "_" are dropped, the renamed decoder_use_batchnorm still works, and the encoder's
  // own weights are not fetched (the checkpoint has them) but stay in the config.
  config.erase("decoder_use_norm");
  config["decoder_use_batchnorm"] = false;
  config["_commit_hash"] = "abc";
  config["encoder_weights"] = "imagenet";
  write_text(dir.path / "config.json", config.dump(2));
  fs::copy_file(kUnetFolder / "model.safetensors", dir.path / "model.safetensors");
  // Without norms the decoder convs gain biases and lose their BatchNorms: not strict.
  smp::log::Capture capture;
  auto model = smp::from_pretrained(dir.path.string(), /*strict=*/false);
  ASSERT_FALSE(capture.lines().empty());
  EXPECT_EQ(capture.lines().front(),
            std::make_pair(std::string("WARN"), std::string("The usage of decoder_use_batchnorm is deprecated. Please "
                                                            "modify your code for decoder_use_norm")));
  EXPECT_EQ(model->config()["decoder_use_norm"], "identity");
  EXPECT_EQ(model->config()["encoder_weights"], "imagenet");
  EXPECT_FALSE(model->config().contains("_commit_hash"));
  EXPECT_FALSE(model->config().contains("decoder_use_batchnorm"));
}

TEST(Pretrained, BadFoldersAreExplained) {
  TempDir dir;
  expect_error_mentions([&] { smp::from_pretrained((dir.path / "none").string()); },
                        {"none", "not a folder with config.json", "Hugging Face Hub model id"});
  write_text(dir.path / "config.json", R"({"classes": 2})");
  expect_error_mentions([&] { smp::from_pretrained(dir.path.string()); }, {"config.json", "_model_class"});
  write_text(dir.path / "config.json", R"({"_model_class": "Unet", "classes": 2,)");
  expect_error_mentions([&] { smp::from_pretrained(dir.path.string()); }, {"config.json", "invalid JSON"});
  write_text(dir.path / "config.json", R"({"_model_class": "Uent", "classes": 2})");
  expect_error_mentions([&] { smp::from_pretrained(dir.path.string()); },
                        {"config.json", "Unknown architecture 'Uent'", "Did you mean: Unet"});
  write_text(dir.path / "config.json", R"({"_model_class": "Unet", "encoder_name": "tu-resnet18", "clases": 2})");
  expect_error_mentions([&] { smp::from_pretrained(dir.path.string()); },
                        {"config.json", "Unknown option 'clases' for Unet"});
  write_text(dir.path / "config.json", R"({"_model_class": "Unet", "encoder_name": "tu-resnet18"})");
  expect_error_mentions([&] { smp::from_pretrained(dir.path.string()); }, {"no model.safetensors"});
}

TEST(Pretrained, FailedSaveLeavesExistingFilesAlone) {
  TempDir dir;
  write_text(dir.path / "config.json", "old config");
  write_text(dir.path / "model.safetensors", "old weights");
  auto model = small_unet();
  // A temporary that cannot be written (a folder in its place) stops the save before anything is replaced.
  for (const char* blocked : {"model.safetensors.tmp", "config.json.tmp"}) {
    fs::create_directory(dir.path / blocked);
    EXPECT_THROW(model->save_pretrained(dir.path.string()), std::runtime_error) << blocked;
    fs::remove(dir.path / blocked);
    EXPECT_EQ(read_text(dir.path / "config.json"), "old config");
    EXPECT_EQ(read_text(dir.path / "model.safetensors"), "old weights");
    EXPECT_FALSE(fs::exists(dir.path / "model.safetensors.tmp"));
    EXPECT_FALSE(fs::exists(dir.path / "config.json.tmp"));
  }
}

// ---- torch.save state dicts ----

TEST(TorchPickle, ReadsStateDictsAsPythonSavedThem) {
  expect_small_state_dict(smp::io::read_torch_state_dict((kData / "checkpoints/state_dict.pth").string()));
  expect_small_state_dict(smp::io::read_torch_state_dict((kData / "checkpoints/state_dict_protocol4.pth").string()));
  // The shared checkpoint's torch.save copy holds exactly its safetensors tensors.
  expect_same_tensors(smp::io::read_torch_state_dict((kUnetFolder / "pytorch_model.bin").string()),
                      smp::io::read_safetensors((kUnetFolder / "model.safetensors").string()).tensors);
}

TEST(TorchPickle, DtypesViewsAndParameters) {
  const auto sd = smp::io::read_torch_state_dict((kData / "checkpoints/dtypes_views.pth").string());
  const auto t = torch::arange(24, torch::kFloat32).reshape({4, 6}) / 4 - 2;
  EXPECT_TRUE(torch::equal(sd.at("base"), t));
  EXPECT_TRUE(torch::equal(sd.at("row"), t[1]));
  EXPECT_TRUE(torch::equal(sd.at("col"), t.select(1, 2)));
  EXPECT_TRUE(torch::equal(sd.at("transposed"), t.t()));
  EXPECT_TRUE(torch::equal(sd.at("half"), t.to(torch::kFloat16)));
  EXPECT_TRUE(torch::equal(sd.at("bf16"), t.to(torch::kBFloat16)));
  EXPECT_TRUE(torch::equal(sd.at("f64"), t.to(torch::kFloat64)));
  EXPECT_TRUE(torch::equal(sd.at("i64"), torch::arange(-2, 3, torch::kInt64)));
  EXPECT_TRUE(torch::equal(sd.at("i32"), torch::arange(-2, 3, torch::kInt32)));
  EXPECT_TRUE(torch::equal(sd.at("i16"), torch::arange(-2, 3, torch::kInt16)));
  EXPECT_TRUE(torch::equal(sd.at("i8"), torch::arange(-2, 3, torch::kInt8)));
  EXPECT_TRUE(torch::equal(sd.at("u8"), torch::arange(0, 250, 50, torch::kUInt8)));
  EXPECT_TRUE(torch::equal(sd.at("bool"), t > 0));
  EXPECT_EQ(sd.at("scalar").dim(), 0);
  EXPECT_EQ(sd.at("scalar").item<float>(), 2.5f);
  EXPECT_EQ(sd.at("empty").sizes(), (std::vector<int64_t>{0, 3}));
  EXPECT_TRUE(torch::equal(sd.at("param"), torch::full({2}, 0.25)));
  // Views were copied out of their shared storage: changing one leaves the others alone.
  sd.at("row").fill_(0);
  EXPECT_TRUE(torch::equal(sd.at("base"), t));
}

TEST(TorchPickle, NestedCheckpointsPickTheirWeights) {
  const auto path = (kData / "checkpoints/checkpoint.pth").string();
  expect_small_state_dict(smp::io::read_torch_state_dict(path));  // "state_dict" is found by itself
  expect_small_state_dict(smp::io::read_torch_state_dict(path, "state_dict"));
  expect_error_mentions([&] { smp::io::read_torch_state_dict(path, "optimizer"); },
                        {path, "entry 'optimizer'", "'state' is a dict, not a tensor"});
  expect_error_mentions([&] { smp::io::read_torch_state_dict(path, "weights"); },
                        {path, "no dict entry 'weights'", "epoch, state_dict, name, flags, raw, optimizer"});
}

TEST(TorchPickle, HostilePicklesAreRefusedNotRun) {
  // GLOBAL os.system, then REDUCE with ("ls",): what pickle.loads would execute.
  const auto os_system = "\x80\x02" "cos\nsystem\n" "q\x00" "X\x02\x00\x00\x00" "ls" "q\x01\x85q\x02Rq\x03."s;
  expect_error_mentions([&] { unpickle(os_system); }, {"test.pkl", "refusing global 'os.system'", "nothing"});
  TempDir dir;
  const auto file = dir.path / "evil.pth";
  write_archive(file, os_system);
  expect_error_mentions([&] { smp::io::read_torch_state_dict(file.string()); },
                        {file.string(), "refusing global 'os.system'"});
  // Other globals a pickle could reach for are refused alike.
  expect_error_mentions([&] { unpickle("\x80\x02" "cbuiltins\neval\n."s); },
                        {"refusing global 'builtins.eval'"});
  expect_error_mentions([&] { unpickle("\x80\x02" "ctorch\nload\n."s); },
                        {"refusing global 'torch.load'"});
}

TEST(TorchPickle, MalformedPicklesThrow) {
  const auto good = pickle_of(kData / "checkpoints/state_dict.pth");
  ASSERT_EQ(unpickle(good).size(), 7u);
  // Every truncation of a real pickle is an error, never a crash.
  for (size_t n = 0; n < good.size(); ++n) EXPECT_THROW(unpickle(good.substr(0, n)), std::runtime_error) << n;
  expect_error_mentions([&] { unpickle(good.substr(0, good.size() / 2)); }, {"test.pkl", "truncated"});
  // Random byte changes: a state dict or a std::runtime_error.
  std::mt19937 rng(7);
  for (int i = 0; i < 3000; ++i) {
    auto bad = good;
    for (int k = 0; k < 1 + i % 4; ++k) bad[rng() % bad.size()] = static_cast<char>(rng() & 0xFF);
    try {
      unpickle(bad);
    } catch (const std::runtime_error&) {
    }
  }
  expect_error_mentions([&] { unpickle("\x80\x02I1\n."s); }, {"unsupported pickle opcode 0x49"});
  expect_error_mentions([&] { unpickle("\x80\x02h\x05."s); }, {"memo entry 5"});
  expect_error_mentions([&] { unpickle("\x80\x02K\x01K\x02."s); }, {"2 values on its stack"});
  expect_error_mentions([&] { unpickle("\x80\x02]q\x00."s); }, {"holds a list, not a state dict"});
  expect_error_mentions([&] { unpickle("\x80\x02K\x01)R."s); }, {"REDUCE calls a int"});
}

TEST(TorchPickle, StoragesAreChecked) {
  // {"w": _rebuild_tensor_v2(storage('0', FloatStorage, numel 4), offset, size, stride, False, OrderedDict())}
  auto pickle = [](int offset, int size0, int stride0, int numel) {
    auto byte = [](int v) { return std::string(1, static_cast<char>(v)); };
    return "\x80\x02}(" "X\x01\x00\x00\x00" "w" "ctorch._utils\n_rebuild_tensor_v2\n(("
           "X\x07\x00\x00\x00" "storage" "ctorch\nFloatStorage\n" "X\x01\x00\x00\x00" "0" "X\x03\x00\x00\x00" "cpu"
           "K"s + byte(numel) + "tQ" + "K" + byte(offset) + "K" + byte(size0) + "\x85" + "K" + byte(stride0) +
           "\x85\x89" + "ccollections\nOrderedDict\n)RtRu.";
  };
  EXPECT_EQ(unpickle(pickle(0, 4, 1, 4)).at("w").sizes(), (std::vector<int64_t>{4}));
  EXPECT_EQ(unpickle(pickle(3, 1, 1, 4)).at("w").sizes(), (std::vector<int64_t>{1}));
  expect_error_mentions([&] { unpickle(pickle(1, 4, 1, 4)); }, {"reaches past its storage of 4 elements"});
  expect_error_mentions([&] { unpickle(pickle(0, 2, 4, 4)); }, {"reaches past its storage"});
  expect_error_mentions([&] { unpickle(pickle(0, 8, 0, 4)); }, {"more elements than its storage"});

  // In an archive, the record must exist and have numel * element size bytes.
  TempDir dir;
  const auto file = dir.path / "storage.pth";
  write_archive(file, pickle(0, 4, 1, 4), {{"data/0", std::string(16, '\0')}});
  EXPECT_EQ(smp::io::read_torch_state_dict(file.string()).at("w").sizes(), (std::vector<int64_t>{4}));
  write_archive(file, pickle(0, 4, 1, 4), {{"data/0", std::string(12, '\0')}});
  expect_error_mentions([&] { smp::io::read_torch_state_dict(file.string()); },
                        {file.string(), "storage '0' holds 12 bytes", "need 16"});
  write_archive(file, pickle(0, 4, 1, 4));
  expect_error_mentions([&] { smp::io::read_torch_state_dict(file.string()); },
                        {file.string(), "storage '0' is not in the archive"});
}

TEST(TorchPickle, OtherFilesAreNamed) {
  TempDir dir;
  const auto text = dir.path / "notes.pth";
  write_text(text, "hello");
  expect_error_mentions([&] { smp::io::read_torch_state_dict(text.string()); }, {text.string(), "not a zip-format"});
  const auto cut = dir.path / "cut.pth";
  write_text(cut, read_text(kData / "checkpoints/state_dict.pth").substr(0, 1500));
  expect_error_mentions([&] { smp::io::read_torch_state_dict(cut.string()); }, {cut.string()});
  expect_error_mentions([&] { smp::io::read_torch_state_dict((dir.path / "none.pth").string()); }, {"cannot open"});
  // Loading goes through load_state_dict like a safetensors file.
  auto conv = torch::nn::Conv2d(torch::nn::Conv2dOptions(2, 3, 3));
  smp::io::TensorMap sd = smp::io::read_torch_state_dict((kData / "checkpoints/state_dict.pth").string());
  smp::io::TensorMap conv_sd{{"weight", sd.at("0.weight")}, {"bias", sd.at("0.bias")}};
  smp::io::load_state_dict(*conv, conv_sd);
  EXPECT_TRUE(torch::equal(conv->weight, ramp({3, 2, 3, 3})));
}
