// The library's spdlog logger (internal).
#pragma once

#include <spdlog/spdlog.h>

namespace smp::log {

spdlog::logger& logger();

}  // namespace smp::log
