// The compiled-in encoder table that `smp list-encoders` prints: in step with the registries, and
// each row what building that encoder gives.
#include <smp/encoder_table.h>

#include <gtest/gtest.h>

#include <set>

namespace {

TEST(EncoderTable, ListsEveryRegisteredEncoderOnceInRegistryOrder) {
  std::vector<std::string> table;
  for (const auto& row : smp::encoder_table()) table.push_back(row.name);
  const auto registered = smp::encoder_names();
  const std::set<std::string> in_table(table.begin(), table.end()), in_registry(registered.begin(), registered.end());
  for (const auto& name : registered)
    EXPECT_TRUE(in_table.count(name)) << name << " is registered but not in src/encoders/encoder_table.tsv: "
                                      << "run scripts/gen-encoders-doc.sh";
  for (const auto& name : table)
    EXPECT_TRUE(in_registry.count(name)) << name << " is in the table but no registry has it";
  EXPECT_EQ(table, registered);
}

// Small encoders of each kind: smp's own CNN and transformer, timm CNN, timm transformer.
TEST(EncoderTable, RowsEqualWhatBuildingTheEncoderGives) {
  for (const std::string name : {"resnet18", "mit_b0", "tu-resnet18", "tu-convnext_atto", "tu-vit_tiny_patch16_224"}) {
    SCOPED_TRACE(name);
    const auto& table = smp::encoder_table();
    auto it = std::find_if(table.begin(), table.end(), [&](const auto& row) { return row.name == name; });
    ASSERT_NE(it, table.end());
    const auto measured = smp::measure_encoder(name);
    EXPECT_EQ(it->family, measured.family);
    EXPECT_EQ(it->channels, measured.channels);
    EXPECT_EQ(it->reductions, measured.reductions);
    EXPECT_EQ(it->parameters, measured.parameters);
    EXPECT_GT(measured.parameters, 1000000);
  }
}

}  // namespace
