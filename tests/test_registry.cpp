// The registry template behind every name table (timm models, architectures, smp encoders, losses).
#include <gtest/gtest.h>
#include <smp/losses.h>
#include <smp/models.h>

#include "support.h"
#include "util/registry.h"

using smp::test::error_of;

TEST(Registry, RefusesADuplicateNameAndListsSorted) {
  smp::util::Registry<int> r("widget");
  r.add("beta", 2);
  r.add("alpha", 1);
  EXPECT_EQ(r.names(), (std::vector<std::string>{"alpha", "beta"}));
  EXPECT_EQ(r.at("beta"), 2);
  EXPECT_EQ(r.find("gamma"), nullptr);
  const auto msg = error_of([&] { r.add("alpha", 3); });
  EXPECT_NE(msg.find("widget 'alpha' is registered twice"), std::string::npos) << msg;
  EXPECT_EQ(r.at("alpha"), 1);
}

TEST(Registry, UnknownNamesGetCloseMatchesAndTheListOrTheHint) {
  smp::util::Registry<int> short_list("widget"), long_list("gadget", "Run `smp gadgets` for the list.");
  for (auto* r : {&short_list, &long_list}) {
    r->add("alpha", 1);
    r->add("alphabet", 2);
  }
  const auto a = error_of([&] { short_list.at("alpah"); });
  EXPECT_NE(a.find("Unknown widget 'alpah'. Did you mean: alpha"), std::string::npos) << a;
  EXPECT_NE(a.find("Available: alpha, alphabet"), std::string::npos) << a;
  const auto b = error_of([&] { long_list.at("alpah"); });
  EXPECT_NE(b.find("Run `smp gadgets` for the list."), std::string::npos) << b;
  EXPECT_EQ(b.find("Available:"), std::string::npos) << b;
}

// The four registries answer the same way.
TEST(Registry, EveryNameTableUsesIt) {
  for (const auto& msg : {error_of([] { smp::create_model("Uent", {}); }),
                          error_of([] { smp::losses::create_loss("DiceLos", nlohmann::json::object()); }),
                          error_of([] { smp::timm::create_model("resnet1"); }),
                          error_of([] { smp::create_model("Unet", {"encoder_name=resnet1"}); })})
    EXPECT_NE(msg.find("Did you mean"), std::string::npos) << msg;
}
