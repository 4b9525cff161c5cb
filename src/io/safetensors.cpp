#include <smp/io.h>

#include <nlohmann/json.hpp>

#include <cstring>
#include <fstream>
#include <limits>

#include "util/files.h"

namespace smp::io {

namespace {

using nlohmann::json;

// Header JSON is capped (the format's own limit is 100 MB) so a hostile length cannot exhaust memory.
constexpr uint64_t kMaxHeaderBytes = 100ull * 1024 * 1024;

struct DtypeName {
  const char* name;
  torch::Dtype dtype;
};
constexpr DtypeName kDtypes[] = {
    {"F64", torch::kFloat64}, {"F32", torch::kFloat32}, {"F16", torch::kFloat16}, {"BF16", torch::kBFloat16},
    {"I64", torch::kInt64},   {"I32", torch::kInt32},   {"I16", torch::kInt16},   {"I8", torch::kInt8},
    {"U8", torch::kUInt8},    {"BOOL", torch::kBool},
};

torch::Dtype dtype_from_name(const std::string& name, const std::string& what) {
  for (const auto& d : kDtypes)
    if (name == d.name) return d.dtype;
  throw std::runtime_error(what + ": unsupported dtype '" + name + "'");
}

const char* dtype_name(torch::Dtype dtype) {
  for (const auto& d : kDtypes)
    if (dtype == d.dtype) return d.name;
  throw std::runtime_error(std::string("safetensors: cannot store dtype ") + c10::toString(dtype));
}

}  // namespace

SafetensorsFile parse_safetensors(const void* data, size_t size, const std::string& what) {
  const auto* bytes = static_cast<const uint8_t*>(data);
  if (size < 8) throw std::runtime_error(what + ": not a safetensors file (shorter than its 8-byte header length)");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];
  if (header_len > kMaxHeaderBytes || header_len > size - 8)
    throw std::runtime_error(what + ": header length " + std::to_string(header_len) + " exceeds the file size " +
                             std::to_string(size) + " (truncated or not a safetensors file)");
  json header;
  try {
    header = json::parse(bytes + 8, bytes + 8 + header_len);
  } catch (const json::exception& e) {
    throw std::runtime_error(what + ": header is not valid JSON (" + e.what() + ")");
  }
  if (!header.is_object()) throw std::runtime_error(what + ": header is not a JSON object");
  const uint64_t data_size = size - 8 - header_len;
  const uint8_t* base = bytes + 8 + header_len;

  SafetensorsFile out;
  for (const auto& [name, entry] : header.items()) {
    const std::string where = what + ": tensor '" + name + "'";
    if (name == "__metadata__") {
      if (!entry.is_object()) throw std::runtime_error(what + ": __metadata__ is not an object");
      for (const auto& [k, v] : entry.items()) {
        if (!v.is_string()) throw std::runtime_error(what + ": __metadata__ value of '" + k + "' is not a string");
        out.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") || !entry.contains("data_offsets") ||
        !entry["dtype"].is_string() || !entry["shape"].is_array() || !entry["data_offsets"].is_array() ||
        entry["data_offsets"].size() != 2)
      throw std::runtime_error(where + " needs dtype (string), shape (array) and data_offsets ([begin, end])");
    const auto dtype = dtype_from_name(entry["dtype"].get<std::string>(), where);
    std::vector<int64_t> shape;
    uint64_t numel = 1;
    for (const auto& d : entry["shape"]) {
      if (!d.is_number_unsigned()) throw std::runtime_error(where + ": shape entries must be non-negative integers");
      const auto v = d.get<uint64_t>();
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          (v != 0 && numel > std::numeric_limits<uint64_t>::max() / v))
        throw std::runtime_error(where + ": shape is too large");
      numel *= v;
      shape.push_back(static_cast<int64_t>(v));
    }
    const auto& offs = entry["data_offsets"];
    if (!offs[0].is_number_unsigned() || !offs[1].is_number_unsigned())
      throw std::runtime_error(where + ": data_offsets must be non-negative integers");
    const auto begin = offs[0].get<uint64_t>(), end = offs[1].get<uint64_t>();
    const uint64_t elem = c10::elementSize(dtype);
    if (begin > end || end > data_size)
      throw std::runtime_error(where + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                               "] lie outside the data section of " + std::to_string(data_size) + " bytes");
    if (numel > std::numeric_limits<uint64_t>::max() / elem || end - begin != numel * elem)
      throw std::runtime_error(where + ": byte length " + std::to_string(end - begin) + " does not match shape and dtype");
    auto t = torch::empty(shape, torch::TensorOptions().dtype(dtype));
    if (end > begin) std::memcpy(t.data_ptr(), base + begin, end - begin);
    out.tensors.emplace(name, std::move(t));
  }
  return out;
}

SafetensorsFile read_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw std::runtime_error(path + ": cannot open file");
  const auto size = static_cast<size_t>(in.tellg());
  in.seekg(0);
  std::string buffer(size, '\0');
  if (!in.read(buffer.data(), static_cast<std::streamsize>(size))) throw std::runtime_error(path + ": read failed");
  return parse_safetensors(buffer.data(), buffer.size(), path);
}

std::string serialize_safetensors(const TensorMap& tensors, const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> blobs;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    auto t = tensor.detach().to(torch::kCPU).contiguous();
    const uint64_t n = t.numel() * t.element_size();
    header[name] = {{"dtype", dtype_name(t.scalar_type())}, {"shape", t.sizes().vec()}, {"data_offsets", {offset, offset + n}}};
    offset += n;
    blobs.push_back(std::move(t));
  }
  std::string head = header.dump();
  head.append((8 - head.size() % 8) % 8, ' ');  // keep the data section 8-byte aligned
  std::string out(8, '\0');
  uint64_t len = head.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((len >> (8 * i)) & 0xFF);
  out += head;
  out.reserve(out.size() + offset);
  for (const auto& t : blobs) out.append(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
  return out;
}

void write_safetensors(const std::string& path, const TensorMap& tensors,
                       const std::map<std::string, std::string>& metadata) {
  util::PendingFile(path, serialize_safetensors(tensors, metadata)).commit();
}

}  // namespace smp::io
