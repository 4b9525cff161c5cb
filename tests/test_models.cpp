// Model construction by typed options and by words, input checks, heads.
#include <gtest/gtest.h>
#include <smp/smp.h>
#include "support.h"

using namespace smp::test;

extern "C" int openblas_get_num_threads() __attribute__((weak));

TEST(Words, ParseJsonBareAndPythonValues) {
  auto j = smp::parse_words({"a=3", "b=null", "c=None", "d=True", "e=[0,2,4]", "f=last", "g=\"last\"",
                             "h={'classes': 4, 'dropout': None}", "i=tu-resnet18", "j=0.5"});
  EXPECT_EQ(j["a"], 3);
  EXPECT_TRUE(j["b"].is_null());
  EXPECT_TRUE(j["c"].is_null());
  EXPECT_EQ(j["d"], true);
  EXPECT_EQ(j["e"], nlohmann::json::parse("[0,2,4]"));
  EXPECT_EQ(j["f"], "last");
  EXPECT_EQ(j["g"], "last");
  EXPECT_EQ(j["h"]["classes"], 4);
  EXPECT_TRUE(j["h"]["dropout"].is_null());
  EXPECT_EQ(j["i"], "tu-resnet18");
  EXPECT_EQ(j["j"], 0.5);
  EXPECT_THROW(smp::parse_words({"novalue"}), std::invalid_argument);
  EXPECT_THROW(smp::parse_words({"e=[0,2"}), std::invalid_argument);
}

TEST(Words, SameModelAsTypedOptions) {
  auto a = smp::create_model("Unet", {"encoder_name=tu-resnet18", "encoder_depth=3", "encoder_indices=[0,2,4]",
                                      "decoder_channels=[64,32,16]"});
  auto b = smp::Unet(smp::UnetOptions()
                         .encoder_name("tu-resnet18")
                         .encoder_depth(3)
                         .encoder_indices({0, 2, 4})
                         .decoder_channels({64, 32, 16}));
  auto sa = smp::io::state_dict(*a);
  auto sb = smp::io::state_dict(*b);
  ASSERT_EQ(sa.size(), sb.size());
  for (const auto& [k, v] : sa) EXPECT_EQ(v.sizes(), sb.at(k).sizes()) << k;
  EXPECT_EQ(a->config()["encoder_indices"], nlohmann::json::parse("[0,2,4]"));
  EXPECT_EQ(a->encoder().features_info_str(), b->encoder().features_info_str());
}

TEST(Words, UnknownKeysAndBadValuesListTheValidOnes) {
  auto msg = error_of([] { smp::create_model("Unet", {"encoder_name=tu-resnet18", "decoder_chanels=[1]"}); });
  EXPECT_NE(msg.find("decoder_chanels"), std::string::npos);
  EXPECT_NE(msg.find("Did you mean: decoder_channels"), std::string::npos) << msg;
  EXPECT_NE(msg.find("encoder_indices"), std::string::npos) << "lists the valid keys";
  msg = error_of([] { smp::create_model("Unet", {"encoder_depth=three"}); });
  EXPECT_NE(msg.find("encoder_depth"), std::string::npos);
  EXPECT_NE(msg.find("integer"), std::string::npos) << msg;
  msg = error_of([] { smp::create_model("Unett", {"encoder_name=tu-resnet18"}); });
  EXPECT_NE(msg.find("Unet"), std::string::npos) << msg;
  msg = error_of([] { smp::create_model("Unet", {"encoder_name=tu-resnet18", "aux_params={\"clases\": 3}"}); });
  EXPECT_NE(msg.find("classes"), std::string::npos) << msg;
}

TEST(Unet, LoweredDepthUsesTheFirstDecoderChannels) {
  // xcit has three /16 features: depth 5 is lowered to 4 and decoder_channels[:4] are used.
  auto m = smp::create_model("Unet", {"encoder_name=tu-xcit_nano_12_p16_224"});
  EXPECT_EQ(m->encoder().depth(), 4);
  m->eval();
  torch::NoGradGuard g;
  auto y = m->forward(torch::randn({1, 3, 64, 64}));
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{1, 1, 64, 64}));
  auto msg = error_of([] { smp::create_model("Unet", {"encoder_name=tu-resnet18", "decoder_channels=[8,8]"}); });
  EXPECT_NE(msg.find("Model depth is 5, but you provide `decoder_channels` for 2 blocks"), std::string::npos) << msg;
  auto shallow = smp::create_model("Unet", {"encoder_name=tu-resnet18", "encoder_depth=3"});
  EXPECT_EQ(shallow->config()["decoder_channels"], nlohmann::json::parse("[256,128,64,32,16]"));
  EXPECT_EQ(shallow->forward(torch::randn({1, 3, 32, 32})).size(2), 32);
}

TEST(Unet, InputChecksNameTheProblemAndTheFix) {
  auto m = smp::Unet(smp::UnetOptions().encoder_name("tu-resnet18").in_channels(1));
  m->eval();
  auto msg = error_of([&] { m->forward(torch::zeros({1, 3, 64, 64})); });
  EXPECT_NE(msg.find("in_channels=3"), std::string::npos) << msg;
  msg = error_of([&] { m->forward(torch::zeros({3, 64, 64})); });
  EXPECT_NE(msg.find("4-d"), std::string::npos) << msg;
  // Unet accepts any size (smp: requires_divisible_input_shape = False).
  torch::NoGradGuard g;
  EXPECT_EQ(m->forward(torch::zeros({1, 1, 50, 70})).sizes(), (std::vector<int64_t>{1, 1, 50, 70}));
}

TEST(Unet, AuxHeadAndActivation) {
  auto m = smp::Unet(smp::UnetOptions()
                         .encoder_name("tu-resnet18")
                         .classes(3)
                         .activation("softmax2d")
                         .aux_params(smp::AuxParams().classes(4).activation("sigmoid")));
  auto out = m->predict(torch::randn({2, 3, 64, 64}));
  EXPECT_FALSE(m->is_training());
  EXPECT_EQ(out.label.sizes(), (std::vector<int64_t>{2, 4}));
  EXPECT_TRUE(torch::allclose(out.mask.sum(1), torch::ones({2, 64, 64}), 1e-5, 1e-5));
  EXPECT_GE(out.label.min().item<float>(), 0.0f);
  EXPECT_LE(out.label.max().item<float>(), 1.0f);
}

// Far more threads than cores is refused with the variable named (100000 used to hang LibTorch's pool).
TEST(Threads, FarMoreThanTheMachineCanUseAreRefused) {
  EXPECT_THROW(smp::configure_threads(100000), std::invalid_argument);
  const char* old = std::getenv("SMP_NUM_THREADS");
  const std::string saved = old ? old : "";
  setenv("SMP_NUM_THREADS", "100000", 1);
  std::string message;
  try {
    smp::configure_threads();
  } catch (const std::invalid_argument& e) {
    message = e.what();
  }
  if (old) setenv("SMP_NUM_THREADS", saved.c_str(), 1); else unsetenv("SMP_NUM_THREADS");
  EXPECT_NE(message.find("SMP_NUM_THREADS = 100000"), std::string::npos) << message;
  EXPECT_EQ(smp::configure_threads(2), 2);
}

// OpenBLAS (install-deps.sh installs it) keeps one thread per call, so its pool never competes with
// LibTorch's intra-op threads.
TEST(Threads, OpenBlasRunsOneThreadPerCall) {
  ASSERT_NE(openblas_get_num_threads, nullptr) << "LibTorch is not linked against OpenBLAS";
  smp::configure_threads(2);
  EXPECT_EQ(openblas_get_num_threads(), 1);
  EXPECT_EQ(torch::get_num_threads(), 2);
}

// smp's freeze_encoder: no gradients into the encoder, and its BatchNorms keep their statistics
// through train(); the decoder trains as before; unfreeze_encoder undoes both.
TEST(FreezeEncoder, StopsGradientsAndKeepsEncoderNormStatistics) {
  torch::manual_seed(0);
  auto model = smp::create_model("Unet", {"encoder_name=resnet18", "encoder_depth=3", "decoder_channels=[16,8,4]"});
  const auto params = model->named_parameters();
  const auto buffers = model->named_buffers();
  const std::string encoder_stat = "encoder.bn1.running_mean", decoder_stat = "decoder.blocks.0.conv1.1.running_mean";
  ASSERT_TRUE(buffers.contains(encoder_stat) && buffers.contains(decoder_stat));

  model->freeze_encoder();
  model->train();
  EXPECT_TRUE(model->encoder_frozen());
  for (const auto& p : params) EXPECT_EQ(p.value().requires_grad(), p.key().rfind("encoder.", 0) != 0) << p.key();
  const auto encoder_before = buffers[encoder_stat].clone(), decoder_before = buffers[decoder_stat].clone();
  auto x = torch::randn({2, 3, 64, 64});
  model->forward(x).sum().backward();
  EXPECT_TRUE(torch::equal(buffers[encoder_stat], encoder_before));
  EXPECT_FALSE(torch::equal(buffers[decoder_stat], decoder_before));
  EXPECT_FALSE(params["encoder.conv1.weight"].grad().defined());
  EXPECT_TRUE(params["decoder.blocks.0.conv1.0.weight"].grad().defined());

  model->eval();
  for (const auto& m : model->modules()) EXPECT_FALSE(m->is_training());

  model->unfreeze_encoder();
  model->train();
  EXPECT_FALSE(model->encoder_frozen());
  for (const auto& p : params) EXPECT_TRUE(p.value().requires_grad()) << p.key();
  model->forward(x);
  EXPECT_FALSE(torch::equal(buffers[encoder_stat], encoder_before));
}
