#include "util/log.h"

#include <smp/log.h>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <cstdlib>
#include <mutex>

namespace smp::log {

namespace {

spdlog::level::level_enum parse_level(const std::string& name) {
  auto level = spdlog::level::from_str(name);
  if (level == spdlog::level::off && name != "off")
    throw std::invalid_argument("unknown log level '" + name + "' (use trace, debug, info, warn, error or off)");
  return level;
}

// Forwards records to the stderr sink only at or above the user's level; the logger itself runs
// at trace while a Capture is alive so captures see everything.
struct State {
  std::shared_ptr<spdlog::sinks::stderr_color_sink_mt> console;
  std::shared_ptr<spdlog::logger> logger;
};

State& state() {
  static State s = [] {
    State st;
    st.console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    st.console->set_pattern("[smp] [%l] %v");
    st.logger = std::make_shared<spdlog::logger>("smp", st.console);
    const char* env = std::getenv("SMP_LOG_LEVEL");
    auto level = spdlog::level::info;
    if (env && *env) {
      try {
        level = parse_level(env);
      } catch (const std::invalid_argument& e) {
        st.logger->warn("SMP_LOG_LEVEL: {}; using info", e.what());
      }
    }
    st.console->set_level(level);
    st.logger->set_level(level);
    return st;
  }();
  return s;
}

class CaptureSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::vector<std::pair<std::string, std::string>> lines;

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    auto level = spdlog::level::to_string_view(msg.level);
    std::string name(level.data(), level.size());
    for (auto& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (name == "WARNING") name = "WARN";
    lines.emplace_back(name, std::string(msg.payload.data(), msg.payload.size()));
  }
  void flush_() override {}
};

}  // namespace

spdlog::logger& logger() { return *state().logger; }

void set_level(const std::string& level) {
  auto l = parse_level(level);
  state().console->set_level(l);
  state().logger->set_level(l);
}

struct Capture::State {
  std::shared_ptr<CaptureSink> sink = std::make_shared<CaptureSink>();
  spdlog::level::level_enum previous;
};

Capture::Capture() : state_(std::make_unique<State>()) {
  auto& s = log::state();
  state_->previous = s.logger->level();
  s.logger->sinks().push_back(state_->sink);
  s.logger->set_level(spdlog::level::trace);
}

Capture::~Capture() {
  auto& s = log::state();
  auto& sinks = s.logger->sinks();
  sinks.erase(std::remove(sinks.begin(), sinks.end(), state_->sink), sinks.end());
  s.logger->set_level(state_->previous);
}

const std::vector<std::pair<std::string, std::string>>& Capture::lines() const { return state_->sink->lines; }

}  // namespace smp::log
