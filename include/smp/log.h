// Library logging: one "smp" logger on stderr. SMP_LOG_LEVEL (trace, debug, info, warn, error, off)
// sets the initial level; the default is info.
#pragma once

#include <memory>
#include <utility>
#include <vector>
#include <string>

namespace smp::log {

void set_level(const std::string& level);  // throws on an unknown level name

// Collects (level, message) of everything logged while alive, at any level, without printing
// anything below the current level. Used to compare log lines with the reference.
class Capture {
 public:
  Capture();
  ~Capture();
  Capture(const Capture&) = delete;
  Capture& operator=(const Capture&) = delete;
  const std::vector<std::pair<std::string, std::string>>& lines() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace smp::log
