// Writing files without clobbering what is there on failure.
#pragma once

#include <string>

namespace smp::util {

// `bytes` written to "<path>.tmp" at construction and renamed over `path` by commit(); the temporary
// is removed when the object goes away uncommitted. Throws std::runtime_error naming the file.
class PendingFile {
 public:
  PendingFile(std::string path, const std::string& bytes);
  ~PendingFile();
  PendingFile(const PendingFile&) = delete;
  PendingFile& operator=(const PendingFile&) = delete;
  void commit();

 private:
  std::string path_, tmp_;
  bool committed_ = false;
};

}  // namespace smp::util
