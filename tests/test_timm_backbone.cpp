// What every timm family inherits from BackboneImpl rather than writing itself: the guard of a
// features_only model's forward() and one check of out_indices, whichever family builds the model.
#include <gtest/gtest.h>
#include <smp/timm.h>

#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

using smp::timm::ModelArgs;

namespace {

// The message of the `Error` that `fn` throws; another exception type fails the test by escaping.
template <typename Error>
std::string message_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an exception";
  return "";
}

TEST(TimmBackbone, FeaturesOnlyModelRefusesClassifierForward) {
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({1, 3, 32, 32});
  for (const std::string name : {"resnet18", "caformer_s18"}) {
    auto features = smp::timm::create_features(name, ModelArgs().out_indices({0}));
    const auto message = message_of<std::logic_error>([&] { features->backbone().forward(x); });
    EXPECT_EQ(message, name + " was built with features_only and has no classifier");
  }
  // The same model built as a classifier passes the guard.
  auto classifier = smp::timm::create_model("resnet18", ModelArgs().num_classes(3));
  classifier->eval();
  EXPECT_EQ(classifier->forward(x).sizes(), (std::vector<int64_t>{1, 3}));
}

TEST(TimmBackbone, OutOfRangeOutIndexNamesTheEntryAndTheRange) {
  struct Case {
    std::string model;
    std::vector<int64_t> out_indices;
    std::string expected;
  };
  const std::vector<Case> cases = {
      // resnet and eva counted their stages by hand; metaformer used the helper, which clamped.
      {"resnet18", {0, 5}, "out_indices entry 5 is out of range: resnet18 has 5 features (indices 0..4, or -5..-1"},
      {"resnet18", {-6}, "out_indices entry -6 is out of range: resnet18 has 5 features"},
      {"eva02_tiny_patch14_224", {12}, "entry 12 is out of range: eva02_tiny_patch14_224 has 12 features"},
      {"caformer_s18", {1, 4}, "entry 4 is out of range: caformer_s18 has 4 features (indices 0..3, or -4..-1"},
      // EfficientNet prunes nothing: the features wrapper checks its out_indices the same way.
      {"efficientnet_b0", {5}, "entry 5 is out of range: efficientnet_b0 has 5 features (indices 0..4"},
  };
  for (const auto& c : cases) {
    const auto message = message_of<std::invalid_argument>(
        [&] { smp::timm::create_features(c.model, ModelArgs().out_indices(c.out_indices)); });
    EXPECT_NE(message.find(c.expected), std::string::npos) << c.model << ": " << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
  // In range, a negative entry counts from the end.
  EXPECT_EQ(smp::timm::create_features("resnet18", ModelArgs().out_indices({-4, -1}))->out_indices(),
            (std::vector<int64_t>{1, 4}));
}

}  // namespace
