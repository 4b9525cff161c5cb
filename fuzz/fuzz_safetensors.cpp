// libFuzzer target for the safetensors parser: any input must parse or throw std::runtime_error.
// Build: cmake -DSMP_BUILD_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ ... && ./fuzz/fuzz_safetensors corpus/
#include <smp/io.h>

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    smp::io::parse_safetensors(data, size, "fuzz");
  } catch (const std::runtime_error&) {
  }
  return 0;
}
