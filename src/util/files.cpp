#include "util/files.h"

#include <cstdio>
#include <fstream>
#include <stdexcept>

namespace smp::util {

PendingFile::PendingFile(std::string path, const std::string& bytes) : path_(std::move(path)), tmp_(path_ + ".tmp") {
  std::ofstream out(tmp_, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error(tmp_ + ": cannot open for writing");
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out.flush()) {
    out.close();
    std::remove(tmp_.c_str());
    throw std::runtime_error(tmp_ + ": write failed (disk full?)");
  }
}

PendingFile::~PendingFile() {
  if (!committed_) std::remove(tmp_.c_str());
}

void PendingFile::commit() {
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) throw std::runtime_error(path_ + ": cannot replace file");
  committed_ = true;
}

}  // namespace smp::util
