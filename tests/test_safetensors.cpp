#include <gtest/gtest.h>
#include <smp/io.h>

#include <filesystem>
#include <fstream>
#include <random>

namespace {

std::string with_header(const std::string& header, const std::string& data = "") {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return out + header + data;
}

void expect_error(const std::string& bytes, const std::string& fragment) {
  try {
    smp::io::parse_safetensors(bytes.data(), bytes.size(), "test.safetensors");
    FAIL() << "no error for: " << fragment;
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("test.safetensors"), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(Safetensors, RoundTripEveryDtype) {
  smp::io::TensorMap tensors;
  for (auto dtype : {torch::kFloat64, torch::kFloat32, torch::kFloat16, torch::kBFloat16, torch::kInt64, torch::kInt32,
                     torch::kInt16, torch::kInt8, torch::kUInt8, torch::kBool}) {
    auto t = torch::arange(6, torch::kFloat64).reshape({2, 3}).to(dtype);
    tensors[std::string("t_") + c10::toString(dtype)] = t;
  }
  tensors["scalar"] = torch::tensor(3.5);
  tensors["empty"] = torch::zeros({0, 4});
  auto bytes = smp::io::serialize_safetensors(tensors, {{"format", "pt"}});
  auto file = smp::io::parse_safetensors(bytes.data(), bytes.size());
  ASSERT_EQ(file.tensors.size(), tensors.size());
  EXPECT_EQ(file.metadata.at("format"), "pt");
  for (const auto& [name, t] : tensors) {
    const auto& got = file.tensors.at(name);
    EXPECT_EQ(got.scalar_type(), t.scalar_type()) << name;
    EXPECT_TRUE(torch::equal(got, t)) << name;
  }
}

TEST(Safetensors, KnownByteLayout) {
  // {"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}} followed by 1.0f, as the format defines it.
  const std::string header = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  const std::string data("\x00\x00\x80\x3f", 4);
  auto bytes = with_header(header, data);
  auto file = smp::io::parse_safetensors(bytes.data(), bytes.size());
  EXPECT_EQ(file.tensors.at("a").item<float>(), 1.0f);
}

TEST(Safetensors, RejectsMalformedFiles) {
  expect_error("abc", "shorter than");
  expect_error(with_header("{}").substr(0, 9), "exceeds the file size");
  std::string huge(8, '\xff');
  expect_error(huge, "exceeds the file size");
  expect_error(with_header("{not json"), "not valid JSON");
  expect_error(with_header("[1,2]"), "not a JSON object");
  expect_error(with_header(R"({"a":{"dtype":"F32","shape":[2]}})"), "data_offsets");
  expect_error(with_header(R"({"a":{"dtype":"Q8","shape":[1],"data_offsets":[0,1]}})", "x"), "unsupported dtype");
  expect_error(with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "1234"), "outside the data");
  expect_error(with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", "1234"), "does not match");
  expect_error(with_header(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", "1234"), "non-negative");
  expect_error(with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", "1234"), "outside the data");
  expect_error(with_header(R"({"a":{"dtype":"F64","shape":[4611686018427387904,4],"data_offsets":[0,8]}})", "12345678"),
               "too large");
  expect_error(with_header(R"({"__metadata__":{"k":1}})"), "not a string");
}

TEST(Safetensors, WriteIsAtomicAndReadable) {
  const auto dir = std::filesystem::temp_directory_path() / "smp_test_safetensors";
  std::filesystem::create_directories(dir);
  const auto path = (dir / "w.safetensors").string();
  smp::io::write_safetensors(path, {{"w", torch::ones({3})}});
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  EXPECT_TRUE(torch::equal(smp::io::read_safetensors(path).tensors.at("w"), torch::ones({3})));
  EXPECT_THROW(smp::io::read_safetensors((dir / "missing.safetensors").string()), std::runtime_error);
  std::filesystem::remove_all(dir);
}

// Mutated and truncated files must either parse or throw std::runtime_error: never crash or hang.
TEST(Safetensors, SurvivesRandomCorruption) {
  const auto valid = smp::io::serialize_safetensors(
      {{"a", torch::arange(12, torch::kFloat32)}, {"b", torch::ones({2, 3}, torch::kFloat16)}}, {{"format", "pt"}});
  std::mt19937 rng(1234);
  int parsed = 0, rejected = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string bytes = valid;
    if (round % 3 == 0) bytes.resize(rng() % bytes.size());
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < flips && !bytes.empty(); ++i) bytes[rng() % bytes.size()] = static_cast<char>(rng());
    try {
      smp::io::parse_safetensors(bytes.data(), bytes.size());
      ++parsed;
    } catch (const std::runtime_error&) {
      ++rejected;
    }
  }
  EXPECT_EQ(parsed + rejected, 3000);
  EXPECT_GT(rejected, 0);
}
