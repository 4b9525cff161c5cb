// The one shape of the library's name tables (timm models, architectures, smp encoders, losses):
// a name is registered once, an unknown name is answered with the close matches and where to look,
// and the names list in sorted order.
#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "util/strings.h"

namespace smp::util {

template <typename Entry>
class Registry {
 public:
  // `what` names an entry in messages ("timm model"). The unknown-name message ends with `hint` when
  // one is given, else (short tables) with every name.
  Registry(std::string what, std::string hint = "") : what_(std::move(what)), hint_(std::move(hint)) {}

  // Two registrations of one name are a porting bug, found at start-up rather than by which one wins.
  void add(const std::string& name, Entry entry) {
    if (!entries_.emplace(name, std::move(entry)).second)
      throw std::logic_error(what_ + " '" + name + "' is registered twice");
  }

  const Entry* find(const std::string& name) const {
    auto it = entries_.find(name);
    return it == entries_.end() ? nullptr : &it->second;
  }

  const Entry& at(const std::string& name) const {
    if (const Entry* entry = find(name)) return *entry;
    throw std::invalid_argument("Unknown " + what_ + " '" + name + "'." + did_you_mean(name, names()) + " " +
                                (hint_.empty() ? "Available: " + join(names(), ", ") : hint_));
  }

  std::vector<std::string> names() const {
    std::vector<std::string> out;
    out.reserve(entries_.size());
    for (const auto& item : entries_) out.push_back(item.first);
    return out;
  }

  const std::map<std::string, Entry>& entries() const { return entries_; }

 private:
  std::string what_, hint_;
  std::map<std::string, Entry> entries_;
};

}  // namespace smp::util
