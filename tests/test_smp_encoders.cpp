// smp's own encoders: names, depth and output-stride handling, weights files and errors, and smp's
// checkpoint compatibility rules. Numbers are checked by the smp and smp_native fixtures.
#include <gtest/gtest.h>
#include <smp/encoders.h>
#include <smp/fill.h>
#include <smp/io.h>
#include <smp/reparameterize.h>
#include <smp/timm.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "support.h"

using namespace smp::test;

namespace {

// The 76 names of smp 0.5's encoders registry (segmentation_models_pytorch.encoders.encoders), sorted.
TEST(SmpEncoders, NamesAsSmpRegistersThem) {
  EXPECT_EQ(smp::list_smp_encoders(), (std::vector<std::string>{
      "densenet121", "densenet161", "densenet169", "densenet201", "dpn107", "dpn131", "dpn68", "dpn68b", "dpn92",
      "dpn98", "efficientnet-b0", "efficientnet-b1", "efficientnet-b2", "efficientnet-b3", "efficientnet-b4",
      "efficientnet-b5", "efficientnet-b6", "efficientnet-b7", "inceptionresnetv2", "inceptionv4", "mit_b0",
      "mit_b1", "mit_b2", "mit_b3", "mit_b4", "mit_b5", "mobilenet_v2", "mobileone_s0", "mobileone_s1",
      "mobileone_s2", "mobileone_s3", "mobileone_s4", "resnet101", "resnet152", "resnet18", "resnet34", "resnet50",
      "resnext101_32x16d", "resnext101_32x32d", "resnext101_32x48d", "resnext101_32x4d", "resnext101_32x8d",
      "resnext50_32x4d", "se_resnet101", "se_resnet152", "se_resnet50", "se_resnext101_32x4d", "se_resnext50_32x4d",
      "senet154", "timm-efficientnet-b0", "timm-efficientnet-b1", "timm-efficientnet-b2", "timm-efficientnet-b3",
      "timm-efficientnet-b4", "timm-efficientnet-b5", "timm-efficientnet-b6", "timm-efficientnet-b7",
      "timm-efficientnet-b8", "timm-efficientnet-l2", "timm-skresnet18", "timm-skresnet34", "timm-skresnext50_32x4d",
      "timm-tf_efficientnet_lite0", "timm-tf_efficientnet_lite1", "timm-tf_efficientnet_lite2",
      "timm-tf_efficientnet_lite3", "timm-tf_efficientnet_lite4", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16",
      "vgg16_bn", "vgg19", "vgg19_bn", "xception"}));
}

TEST(SmpEncoders, DepthCutsFeaturesNotParameters) {
  auto full = smp::create_encoder(smp::EncoderOptions().name("resnet18"));
  auto shallow = smp::create_encoder(smp::EncoderOptions().name("resnet18").depth(3));
  EXPECT_EQ(shallow->out_channels(), (std::vector<int64_t>{3, 64, 64, 128}));
  EXPECT_EQ(keys(*shallow), keys(*full));  // smp keeps every layer, so checkpoints load at any depth
  auto feats = shallow->forward(torch::zeros({1, 3, 64, 64}));
  ASSERT_EQ(feats.size(), 4u);
  EXPECT_EQ(feats.back().sizes(), (std::vector<int64_t>{1, 128, 8, 8}));

  auto mit = smp::create_encoder(smp::EncoderOptions().name("mit_b0").depth(3));
  EXPECT_EQ(mit->out_channels(), (std::vector<int64_t>{3, 0, 32, 64}));
  auto m = mit->forward(torch::zeros({1, 3, 64, 64}));
  EXPECT_EQ(m[1].sizes(), (std::vector<int64_t>{1, 0, 32, 32}));  // the 0-channel placeholder
  EXPECT_EQ(m[3].sizes(), (std::vector<int64_t>{1, 64, 8, 8}));
}

TEST(SmpEncoders, OutputStrideDilatesResNetOnly) {
  auto os8 = smp::create_encoder(smp::EncoderOptions().name("resnet34").output_stride(8));
  EXPECT_EQ(os8->output_stride(), 8);
  EXPECT_EQ(os8->forward(torch::zeros({1, 3, 64, 64})).back().sizes(), (std::vector<int64_t>{1, 512, 8, 8}));
  EXPECT_NE(error_of([] { smp::create_encoder(smp::EncoderOptions().name("resnet34").output_stride(4)); })
                .find("Output stride should be 16 or 8, got 4"),
            std::string::npos);
  EXPECT_NE(error_of([] { smp::create_encoder(smp::EncoderOptions().name("mit_b0").output_stride(16)); })
                .find("supports output_stride 32 only"),
            std::string::npos);
  EXPECT_NE(error_of([] { smp::create_encoder(smp::EncoderOptions().name("resnet18").depth(6)); })
                .find("encoder_depth should be in range [1, 5], got 6"),
            std::string::npos);
}

TEST(SmpEncoders, UnknownNameSuggestsBothKinds) {
  const auto msg = error_of([] { smp::create_encoder(smp::EncoderOptions().name("resnet43")); });
  EXPECT_NE(msg.find("Unknown encoder 'resnet43'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("resnet34"), std::string::npos) << msg;
}

// timm registers coat, convit, convmixer, crossvit and visformer but cannot build them with features_only.
TEST(SmpEncoders, TimmModelsWithoutFeaturesSayWhy) {
  for (const std::string name : {"tu-coat_lite_mini", "tu-crossvit_9_240", "tu-visformer_tiny"}) {
    const auto msg = error_of([&] { smp::create_encoder(smp::EncoderOptions().name(name)); });
    EXPECT_NE(msg.find("cannot be an encoder: timm builds"), std::string::npos) << msg;
    EXPECT_NE(msg.find("without features_only"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
  EXPECT_EQ(smp::timm::module_without_features("convit_tiny"), "convit");
  EXPECT_EQ(smp::timm::module_without_features("resnet18"), "");
  EXPECT_EQ(smp::timm::models_without_features().size(), 27u);
}

// A weights file with the classifier ("fc.*") loads; a 1-channel encoder gets the summed first conv.
TEST(SmpEncoders, WeightsFileLoadsAndAdaptsTheFirstConv) {
  auto source = smp::create_encoder(smp::EncoderOptions().name("resnet18"));
  smp::fill::fill_module(*source);
  auto tensors = smp::io::state_dict(*source);
  tensors["fc.weight"] = torch::zeros({1000, 512});
  tensors["fc.bias"] = torch::zeros({1000});
  const auto path = (std::filesystem::temp_directory_path() / "smp_test_resnet18_weights.safetensors").string();
  smp::io::write_safetensors(path, tensors);
  auto gray = smp::create_encoder(smp::EncoderOptions().name("resnet18").in_channels(1).weights(path));
  const auto got = smp::io::state_dict(*gray);
  EXPECT_TRUE(torch::allclose(got.at("conv1.weight"), tensors.at("conv1.weight").sum(1, true)));
  EXPECT_TRUE(torch::equal(got.at("layer4.1.bn2.running_var"), tensors.at("layer4.1.bn2.running_var")));
  tensors.erase("layer1.0.conv1.weight");
  smp::io::write_safetensors(path, tensors);
  EXPECT_NE(error_of([&] { smp::create_encoder(smp::EncoderOptions().name("resnet18").weights(path)); })
                .find("layer1.0.conv1.weight"),
            std::string::npos);
  std::filesystem::remove(path);
}

}  // namespace

namespace {

// docs/encoders.md lists exactly the encoder names the library accepts (regenerate it with
// scripts/gen-encoders-doc.sh when this fails).
TEST(EncoderDocs, TableListsEveryEncoder) {
  std::ifstream doc(std::string(SMP_TEST_DATA) + "/../../docs/encoders.md");
  ASSERT_TRUE(doc) << "docs/encoders.md not found";
  std::vector<std::string> listed;
  for (std::string line; std::getline(doc, line);) {
    if (line.rfind("| ", 0) != 0 || line.rfind("| Encoder", 0) == 0) continue;
    listed.push_back(line.substr(2, line.find(" |", 2) - 2));
  }
  auto want = smp::list_smp_encoders();
  // Models other tests register (family "test") are not library encoders.
  for (const auto& name : smp::timm::list_models())
    if (smp::timm::model_entry(name).family != "test") want.push_back("tu-" + name);
  std::sort(listed.begin(), listed.end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(listed, want);
}

}  // namespace

namespace {

// A state dict of `model` with every key passed through `rename`, values filled (smp-fill-v1).
smp::io::TensorMap renamed_state_dict(smp::SegmentationModel& model,
                                      const std::function<std::string(const std::string&)>& rename) {
  smp::fill::fill_module(*model);
  smp::io::TensorMap out;
  for (const auto& [key, value] : smp::io::state_dict(*model)) out[rename(key)] = value.clone();
  return out;
}

void expect_same_state(smp::SegmentationModel& a, smp::SegmentationModel& b) {
  const auto sa = smp::io::state_dict(*a), sb = smp::io::state_dict(*b);
  ASSERT_EQ(sa.size(), sb.size());
  for (const auto& [key, value] : sa) EXPECT_TRUE(torch::equal(value, sb.at(key))) << key;
}

// Older smp versions kept DeepLabV3's decoder as a Sequential (decoder.0 = ASPP, .1 = conv, .2 = bn).
TEST(CheckpointCompatibility, DeepLabV3SequentialDecoderNames) {
  const std::vector<std::string> words = {"encoder_name=tu-resnet18", "encoder_depth=3", "decoder_channels=16"};
  auto saved = smp::create_model("DeepLabV3", words);
  const auto old = renamed_state_dict(saved, [](std::string key) {
    for (const auto& [now, before] : std::vector<std::pair<std::string, std::string>>{
             {"decoder.aspp.", "decoder.0."}, {"decoder.conv.", "decoder.1."}, {"decoder.bn.", "decoder.2."}})
      if (key.rfind(now, 0) == 0) return before + key.substr(now.size());
    return key;
  });
  ASSERT_TRUE(old.count("decoder.1.weight"));
  auto loaded = smp::create_model("DeepLabV3", words);
  EXPECT_TRUE(loaded->load_state_dict(old).ok());
  expect_same_state(saved, loaded);
  // Other architectures have no such names: the same keys are refused.
  auto plus = smp::create_model("DeepLabV3Plus", {"encoder_name=tu-resnet18"});
  smp::io::TensorMap one = {{"decoder.0.weight", torch::zeros({1})}};
  EXPECT_FALSE(plus->load_state_dict(one, /*strict=*/false).ok());
}

// smp builds its deprecated timm-regnet* (res2*, resnest*, mobilenetv3*, gernet*) encoders as "tu-"
// ones, and their old checkpoints lacked the universal encoder's "model." level.
TEST(CheckpointCompatibility, DeprecatedTimmEncoderNames) {
  auto model = smp::create_model("Unet", {"encoder_name=timm-regnetx_002", "encoder_depth=3",
                                          "decoder_channels=[16,8,4]"});
  auto& encoder = dynamic_cast<smp::TimmUniversalEncoderImpl&>(model->encoder());
  EXPECT_EQ(encoder.timm_name(), "regnetx_002");
  EXPECT_EQ(model->config().at("encoder_name"), "timm-regnetx_002");  // saved as the user named it
  const auto old = renamed_state_dict(model, [](const std::string& key) {
    return key.rfind("encoder.model.", 0) == 0 ? "encoder." + key.substr(14) : key;
  });
  ASSERT_TRUE(old.count("encoder.stem.conv.weight"));
  auto loaded = smp::create_model("Unet", {"encoder_name=tu-regnetx_002", "encoder_depth=3",
                                           "decoder_channels=[16,8,4]"});
  EXPECT_TRUE(loaded->load_state_dict(old).ok());
  expect_same_state(model, loaded);
  // Other timm encoders keep their names as they are.
  auto resnet = smp::create_model("Unet", {"encoder_name=tu-resnet18", "encoder_depth=3", "decoder_channels=[16,8,4]"});
  const auto unprefixed = renamed_state_dict(resnet, [](const std::string& key) {
    return key.rfind("encoder.model.", 0) == 0 ? "encoder." + key.substr(14) : key;
  });
  EXPECT_NE(error_of([&] { resnet->load_state_dict(unprefixed); }).find("encoder.conv1.weight"), std::string::npos);
  EXPECT_NE(error_of([] { smp::create_encoder(smp::EncoderOptions().name("timm-regnetx_999")); })
                .find("smp builds it as 'tu-regnetx_999'"),
            std::string::npos);
}

// strict=false skips tensors of another shape (smp's "Mismatched keys") and loads the rest.
TEST(CheckpointCompatibility, NonStrictSkipsMismatchedShapes) {
  auto source = smp::create_model("Unet", {"encoder_name=tu-resnet18", "encoder_depth=3", "decoder_channels=[16,8,4]",
                                           "classes=3"});
  const auto tensors = renamed_state_dict(source, [](const std::string& key) { return key; });
  auto target = smp::create_model("Unet", {"encoder_name=tu-resnet18", "encoder_depth=3", "decoder_channels=[16,8,4]",
                                           "classes=2"});
  const auto head_before = smp::io::state_dict(*target).at("segmentation_head.0.weight").clone();
  EXPECT_NE(error_of([&] { target->load_state_dict(tensors); }).find("segmentation_head.0.weight"), std::string::npos);
  const auto report = target->load_state_dict(tensors, /*strict=*/false);
  ASSERT_EQ(report.mismatched.size(), 2u);  // the head's weight and bias
  const auto after = smp::io::state_dict(*target);
  EXPECT_TRUE(torch::equal(after.at("segmentation_head.0.weight"), head_before));
  EXPECT_TRUE(torch::equal(after.at("encoder.model.conv1.weight"), tensors.at("encoder.model.conv1.weight")));
}

}  // namespace

namespace {

// Where smp's make_dilated raises, so does the encoder, with smp's reason; the others dilate.
TEST(SmpEncoders, OutputStrideAsEachEncoderAllowsIt) {
  for (const auto* name : {"densenet121", "vgg11", "inceptionv4", "inceptionresnetv2", "xception"}) {
    const auto msg = error_of([&] { smp::create_encoder(smp::EncoderOptions().name(name).output_stride(16)); });
    EXPECT_NE(msg.find("not support dilated mode"), std::string::npos) << name << ": " << msg;
  }
  for (const auto* name : {"se_resnet50", "dpn68", "efficientnet-b0", "timm-efficientnet-b0", "mobilenet_v2",
                           "mobileone_s0", "timm-skresnet18"}) {
    auto encoder = smp::create_encoder(smp::EncoderOptions().name(name).output_stride(8));
    encoder->eval();
    EXPECT_EQ(encoder->forward(torch::zeros({1, 3, 64, 64})).back().size(-1), 8) << name;
    EXPECT_NE(error_of([&] { smp::create_encoder(smp::EncoderOptions().name(name).output_stride(4)); })
                  .find("Output stride should be 16 or 8, got 4"),
              std::string::npos)
        << name;
  }
}

// smp's mobileone encoders fold into single convolutions with the same outputs.
TEST(SmpEncoders, MobileOneReparameterizes) {
  for (const auto* name : {"mobileone_s0", "mobileone_s4"}) {
    auto encoder = smp::create_encoder(smp::EncoderOptions().name(name).output_stride(16));
    smp::fill::fill_module(*encoder);
    encoder->eval();
    // In float64: the filled (untrained) s4 reaches activations of 1e5, where float32's reordered
    // sums alone differ by 1e-3 relative; the folding itself must be exact.
    encoder->to(torch::kDouble);
    const auto x = torch::rand({1, 3, 64, 64}, torch::kDouble);
    torch::NoGradGuard no_grad;
    const auto before = encoder->forward(x);
    EXPECT_GT(smp::timm::reparameterize(*encoder), 0) << name;
    EXPECT_TRUE(has_prefix(keys(*encoder), "stage1.0.reparam_conv.")) << name;
    const auto after = encoder->forward(x);
    ASSERT_EQ(before.size(), after.size());
    for (size_t i = 0; i < before.size(); ++i)
      EXPECT_LT((before[i] - after[i]).abs().max().item<double>(), 1e-9 * before[i].abs().max().item<double>())
          << name << " feature " << i;
  }
}

}  // namespace

namespace {

// Which architectures smp builds with its own encoders (checked against Python smp 0.5): the ones that
// dilate the encoder (DeepLabV3, DeepLabV3Plus, PAN) refuse the encoders that cannot be dilated, with
// the encoder's reason, and DPT takes timm encoders only; every other pair builds.
TEST(SmpEncoders, ArchitecturesBuildWhereSmpBuildsThem) {
  const std::vector<std::string> archs = {"Unet",      "UnetPlusPlus",  "MAnet", "Linknet", "FPN",       "PSPNet",
                                          "DeepLabV3", "DeepLabV3Plus", "PAN",   "UPerNet", "Segformer", "DPT"};
  const std::vector<std::string> undilatable = {"vgg11", "densenet121", "inceptionv4", "xception"};
  for (const auto& encoder : {"vgg11", "densenet121", "inceptionv4", "xception", "mobilenet_v2", "dpn68",
                              "efficientnet-b0"}) {
    const bool dilatable = std::find(undilatable.begin(), undilatable.end(), encoder) == undilatable.end();
    for (const auto& arch : archs) {
      const auto msg = error_of([&] { smp::create_model(arch, {std::string("encoder_name=") + encoder}); });
      if (arch == "DPT")
        EXPECT_NE(msg.find("Only Timm encoders are supported for DPT"), std::string::npos) << encoder << ": " << msg;
      else if (!dilatable && (arch == "DeepLabV3" || arch == "DeepLabV3Plus" || arch == "PAN"))
        EXPECT_NE(msg.find("not support dilated mode"), std::string::npos) << encoder << " " << arch << ": " << msg;
      else
        EXPECT_EQ(msg, "(no error)") << encoder << " " << arch;
    }
  }
}

}  // namespace
