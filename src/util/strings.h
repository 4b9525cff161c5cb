// Small string helpers shared by the registries and option parsers.
#pragma once

#include <string>
#include <vector>

namespace smp::util {

// Candidates closest to `word` by edit distance (at most `n`, only reasonably close ones).
std::vector<std::string> close_matches(const std::string& word, const std::vector<std::string>& candidates,
                                       size_t n = 5);
// " Did you mean: a, b?" or "" when nothing is close.
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);
// Shell-style match with '*' and '?'.
bool glob_match(const std::string& pattern, const std::string& text);
std::string join(const std::vector<std::string>& parts, const std::string& sep);
bool starts_with(const std::string& s, const std::string& prefix);
bool ends_with(const std::string& s, const std::string& suffix);
std::string to_lower(std::string s);

}  // namespace smp::util
