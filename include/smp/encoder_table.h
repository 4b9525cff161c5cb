// Every encoder name with its features (channels, reductions) and parameter count, known at build
// time: `smp list-encoders` answers from this table instead of building each model.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace smp {

struct EncoderRow {
  std::string name;    // as create_model takes it: smp's own names and tu-<timm name>
  std::string family;  // "smp" for smp's own encoders, the timm family otherwise
  std::vector<int64_t> channels, reductions;
  int64_t parameters = 0;  // the features-only backbone's (timm: features_only=True)
};

// The compiled-in table (src/encoders/encoder_table.tsv), in registry order.
const std::vector<EncoderRow>& encoder_table();

// Builds the encoder and reads the same facts from it (what scripts/gen-encoders-doc.sh records).
EncoderRow measure_encoder(const std::string& name);

// Every name the registries accept, in table order: smp's own encoders, then tu-<timm name>.
std::vector<std::string> encoder_names();

std::string to_tsv(const EncoderRow& row);

}  // namespace smp
