#include <smp/encoder_table.h>
#include <smp/encoders.h>
#include <smp/timm.h>

#include <fmt/format.h>

#include <sstream>
#include <stdexcept>

#include "util/strings.h"

namespace smp {

namespace detail {
extern const char* const kEncoderTableTsv;  // generated from encoder_table.tsv by CMake
}

namespace {

std::vector<int64_t> parse_ints(const std::string& text) {
  std::vector<int64_t> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) out.push_back(std::stoll(item));
  return out;
}

int64_t count_parameters(const torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters()) n += p.numel();
  return n;
}

}  // namespace

const std::vector<EncoderRow>& encoder_table() {
  static const std::vector<EncoderRow> table = [] {
    std::vector<EncoderRow> rows;
    std::stringstream in(detail::kEncoderTableTsv);
    for (std::string line; std::getline(in, line);) {
      if (line.empty() || line[0] == '#') continue;
      std::vector<std::string> fields;
      std::stringstream cells(line);
      for (std::string cell; std::getline(cells, cell, '\t');) fields.push_back(cell);
      if (fields.size() != 5) throw std::logic_error("encoder_table.tsv: malformed line '" + line + "'");
      rows.push_back({fields[0], fields[1], parse_ints(fields[2]), parse_ints(fields[3]), std::stoll(fields[4])});
    }
    return rows;
  }();
  return table;
}

std::vector<std::string> encoder_names() {
  auto names = list_smp_encoders();
  for (const auto& name : timm::list_models()) names.push_back("tu-" + name);
  return names;
}

EncoderRow measure_encoder(const std::string& name) {
  EncoderRow row;
  row.name = name;
  if (util::starts_with(name, "tu-")) {
    const auto timm_name = name.substr(3);
    auto backbone = timm::create_features(timm_name);
    for (const auto& f : backbone->feature_info()) {
      row.channels.push_back(f.num_chs);
      row.reductions.push_back(f.reduction);
    }
    row.family = timm::model_entry(timm_name).family;
    row.parameters = count_parameters(*backbone);
    return row;
  }
  auto encoder = create_encoder(EncoderOptions().name(name));
  const auto all = encoder->out_channels();
  row.family = "smp";
  for (size_t i = 1; i < all.size(); ++i) {
    row.channels.push_back(all[i]);
    row.reductions.push_back(int64_t{1} << i);
  }
  row.parameters = count_parameters(*encoder);
  return row;
}

std::string to_tsv(const EncoderRow& row) {
  return fmt::format("{}\t{}\t{}\t{}\t{}", row.name, row.family, fmt::join(row.channels, ","),
                     fmt::join(row.reductions, ","), row.parameters);
}

}  // namespace smp
