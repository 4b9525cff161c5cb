// libFuzzer target for the state-dict unpickler (the data.pkl of a torch.save archive): any input must
// give a state dict or throw std::runtime_error. Storages are served as zeros, up to 1 MiB each.
// Build: cmake -DSMP_BUILD_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ ... && ./fuzz/fuzz_torch_pickle corpus/
#include <cstddef>
#include <cstdint>

#include "io/torch_pickle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const smp::io::detail::StorageLoader zeros = [](const std::string& key, torch::Dtype dtype, int64_t numel) {
    if (numel > (int64_t{1} << 20) / static_cast<int64_t>(c10::elementSize(dtype)))
      throw std::runtime_error("storage '" + key + "' too large for the fuzzer");
    return torch::zeros({numel}, torch::TensorOptions().dtype(dtype));
  };
  try {
    smp::io::detail::unpickle_state_dict(data, size, zeros, "", "fuzz");
  } catch (const std::runtime_error&) {
  }
  return 0;
}
