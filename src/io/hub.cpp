// hf_hub_download over libcurl, following huggingface_hub's cache layout and lookup order.
#include <smp/hub.h>

#include <curl/curl.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "util/log.h"
#include "util/strings.h"

namespace smp::hub {

namespace {

namespace fs = std::filesystem;

// A broken transfer that still delivered bytes is resumed at most this often within one call.
constexpr int kMaxResumes = 5;
constexpr int kMaxRelativeRedirects = 10;

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

// Seconds from an environment variable (huggingface_hub's defaults are 10 s for both time-outs).
long timeout_seconds(const char* name, long fallback) {
  const auto text = env(name);
  if (text.empty()) return fallback;
  try {
    size_t used = 0;
    const double value = std::stod(text, &used);
    if (used == text.size() && value > 0) return std::max(1L, static_cast<long>(value + 0.5));
  } catch (const std::exception&) {
  }
  throw std::invalid_argument(fmt::format("{}={} is not a number of seconds > 0", name, text));
}

bool is_commit_hash(const std::string& s) {
  return s.size() == 40 &&
         std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)) || (c >= 'a' && c <= 'f'); });
}

// Percent-encoding of everything but RFC 3986's unreserved characters (and '/' when kept).
std::string quote(const std::string& s, bool keep_slash) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/'))
      out += static_cast<char>(c);
    else
      out += fmt::format("%{:02X}", c);
  }
  return out;
}

// A relative path that stays inside its folder: no empty, "." or ".." components, no backslashes.
bool is_contained_path(const std::string& p) {
  if (p.empty() || p.front() == '/' || p.find('\\') != std::string::npos) return false;
  std::stringstream parts(p);
  for (std::string part; std::getline(parts, part, '/');)
    if (part.empty() || part == "." || part == "..") return false;
  return p.back() != '/';
}

void check_arguments(const std::string& repo_id, const std::string& filename, const std::string& revision) {
  // huggingface_hub's repo id rule: "name" or "namespace/name" of [A-Za-z0-9_.-], no "--" or "..".
  const auto slash = repo_id.find('/');
  const bool ok_chars = std::all_of(repo_id.begin(), repo_id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' || c == '/';
  });
  if (repo_id.empty() || repo_id.size() > 96 || !ok_chars || repo_id.find("--") != std::string::npos ||
      repo_id.find("..") != std::string::npos || slash == 0 || slash + 1 == repo_id.size() ||
      (slash != std::string::npos && repo_id.find('/', slash + 1) != std::string::npos))
    throw std::invalid_argument("Invalid repo id '" + repo_id +
                                "': use 'name' or 'namespace/name' with letters, digits, '-', '_' and '.' (no '--' "
                                "or '..', at most 96 characters)");
  if (!is_contained_path(filename))
    throw std::invalid_argument("Invalid filename '" + filename +
                                "': it must be a relative path inside the repository (no leading '/', no '..')");
  if (!is_contained_path(revision))
    throw std::invalid_argument("Invalid revision '" + revision + "': give a branch, tag or commit hash");
}

// A value the server sends that becomes a file name in the cache.
void check_cache_name(const std::string& what, const std::string& value, const std::string& url) {
  if (value.empty() || value == "." || value == ".." || value.find('/') != std::string::npos ||
      value.find('\\') != std::string::npos)
    throw HubError(fmt::format("The server's {} for {} is not usable as a cache file name: '{}'", what, url, value));
}

std::string repo_folder_name(const std::string& repo_id) {
  std::string out = "models--";
  for (char c : repo_id) out += c == '/' ? std::string("--") : std::string(1, c);
  return out;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Written to a temporary name, then renamed, so readers never see half a file.
void write_text_atomic(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  static std::atomic<unsigned> serial{0};  // unique among this process's threads too
  const auto tmp = path.string() + "." + std::to_string(::getpid()) + "." + std::to_string(serial++) + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) throw HubError("Could not write " + tmp);
  }
  fs::rename(tmp, path);
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

// The headers of the last response seen (a redirect or "100 Continue" starts a new one).
struct Headers {
  std::map<std::string, std::string> values;  // lower-case names
  std::string get(const std::string& name) const {
    auto it = values.find(name);
    return it == values.end() ? "" : it->second;
  }
};

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto& headers = *static_cast<Headers*>(user);
  const std::string line(data, size * count);
  if (line.rfind("HTTP/", 0) == 0) {
    headers.values.clear();
  } else if (const auto colon = line.find(':'); colon != std::string::npos) {
    headers.values[util::to_lower(trim(line.substr(0, colon)))] = trim(line.substr(colon + 1));
  }
  return size * count;
}

std::string host_of(const std::string& url) {
  const auto start = url.find("://");
  if (start == std::string::npos) return "";
  const auto end = url.find('/', start + 3);
  return url.substr(start + 3, end == std::string::npos ? std::string::npos : end - start - 3);
}

// One libcurl easy handle with the options every request here shares.
class Request {
 public:
  Request(const std::string& url, bool send_token) {
    static std::once_flag init;
    std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    curl_ = curl_easy_init();
    if (!curl_) throw HubError("Could not initialise libcurl");
    error_[0] = '\0';
    curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);  // time-outs without SIGALRM: safe in threads
    curl_easy_setopt(curl_, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl_, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl_, CURLOPT_ERRORBUFFER, error_);
    curl_easy_setopt(curl_, CURLOPT_USERAGENT, "smp-cpp");
    curl_easy_setopt(curl_, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl_, CURLOPT_HEADERDATA, &headers_);
    // The real size is wanted: no compressed transfer.
    add_header("Accept-Encoding: identity");
    const auto token = env("HF_TOKEN");
    if (send_token && !token.empty()) add_header("Authorization: Bearer " + token);
  }
  ~Request() {
    curl_slist_free_all(list_);
    curl_easy_cleanup(curl_);
  }
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;

  void add_header(const std::string& header) { list_ = curl_slist_append(list_, header.c_str()); }
  CURL* handle() { return curl_; }
  const Headers& headers() const { return headers_; }

  CURLcode perform() {
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, list_);
    return curl_easy_perform(curl_);
  }
  long status() const {
    long code = 0;
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &code);
    return code;
  }
  std::string error(CURLcode code) const { return error_[0] ? std::string(error_) : curl_easy_strerror(code); }

 private:
  CURL* curl_ = nullptr;
  curl_slist* list_ = nullptr;
  Headers headers_;
  char error_[CURL_ERROR_SIZE];
};

struct FileRef {
  std::string repo_id, filename, revision;
};

// The hub knows the repository but not this file or revision: no cached copy may stand in for it.
class NotOnHub : public HubError {
 public:
  using HubError::HubError;
};

// A transfer that got no usable HTTP response.
HubError network_error(CURLcode code, const Request& request, const std::string& url, long timeout_s,
                       const char* timeout_var) {
  if (code == CURLE_OPERATION_TIMEDOUT)
    return HubError(fmt::format("Timed out after {} s waiting for {} ({}); raise {} for slow connections", timeout_s,
                                url, request.error(code), timeout_var));
  if (code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST || code == CURLE_COULDNT_RESOLVE_PROXY)
    return HubError(fmt::format("Could not connect to {} ({}); check the network, the proxy or HF_ENDPOINT, or set "
                                "HF_HUB_OFFLINE=1 to use only the cache",
                                url, request.error(code)));
  return HubError(fmt::format("Request to {} failed: {}", url, request.error(code)));
}

// The hub's error codes (X-Error-Code) and statuses, named.
[[noreturn]] void throw_http_error(long status, const Headers& headers, const std::string& url, const FileRef& f) {
  const auto code = headers.get("x-error-code");
  auto message = headers.get("x-error-message");
  if (!message.empty()) message = " Server says: " + message;
  const int s = static_cast<int>(status);
  if (code == "RepoNotFound" || (status == 401 && code.empty()))
    throw HubError(fmt::format("Repository '{}' not found ({} answered HTTP {}). Check the repo id; a private or gated "
                                "repository needs a token in HF_TOKEN.{}",
                                f.repo_id, url, status, message),
                    s);
  if (code == "RevisionNotFound")
    throw NotOnHub(fmt::format("Revision '{}' not found in repository '{}' ({} answered HTTP {}).{}", f.revision,
                                f.repo_id, url, status, message),
                    s);
  if (code == "EntryNotFound")
    throw NotOnHub(fmt::format("File '{}' not found in repository '{}' at revision '{}' ({} answered HTTP {}).{}",
                                f.filename, f.repo_id, f.revision, url, status, message),
                    s);
  if (code == "GatedRepo" || status == 403)
    throw HubError(fmt::format("Access to '{}' of repository '{}' is forbidden ({} answered HTTP {}): the repository "
                                "is gated or private; accept its terms on the hub and put a token with access in "
                                "HF_TOKEN.{}",
                                f.filename, f.repo_id, url, status, message),
                    s);
  if (status == 404)
    throw HubError(fmt::format("Not found: repository '{}', revision '{}' or file '{}' does not exist ({} answered "
                                "HTTP 404).{}",
                                f.repo_id, f.revision, f.filename, url, message),
                    s);
  throw HubError(fmt::format("{} answered HTTP {} for '{}' of repository '{}'.{}", url, status, f.filename, f.repo_id,
                              message),
                  s);
}

struct Metadata {
  std::string commit, etag, location;
  int64_t size = -1;
};

// huggingface_hub's etag normalisation: no weak-validator prefix, no quotes.
std::string normalize_etag(std::string etag) {
  if (etag.rfind("W/", 0) == 0) etag = etag.substr(2);
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') etag = etag.substr(1, etag.size() - 2);
  return etag;
}

int64_t to_size(const std::string& text) {
  if (text.empty() || !std::all_of(text.begin(), text.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
    return -1;
  try {
    return std::stoll(text);
  } catch (const std::out_of_range&) {
    return -1;
  }
}

// HEAD on the resolve URL. Relative redirects (renamed repositories) are followed; an absolute one
// (the CDN holding large files) is where the GET goes, and its response carries the metadata.
Metadata fetch_metadata(const std::string& url, const FileRef& f) {
  const long timeout = timeout_seconds("HF_HUB_ETAG_TIMEOUT", 10);
  std::string current = url;
  for (int hop = 0;; ++hop) {
    Request request(current, true);
    curl_easy_setopt(request.handle(), CURLOPT_NOBODY, 1L);
    curl_easy_setopt(request.handle(), CURLOPT_TIMEOUT, timeout);
    const auto code = request.perform();
    if (code != CURLE_OK) throw network_error(code, request, current, timeout, "HF_HUB_ETAG_TIMEOUT");
    const long status = request.status();
    const auto& h = request.headers();
    const auto location = h.get("location");
    const bool redirect = status >= 300 && status < 400;
    if (redirect && !location.empty() && location.find("://") == std::string::npos && hop < kMaxRelativeRedirects) {
      const auto origin = current.substr(0, current.find('/', current.find("://") + 3));
      current = location.front() == '/' ? origin + location : current.substr(0, current.rfind('/') + 1) + location;
      continue;
    }
    if (status >= 400 || (redirect && location.empty())) throw_http_error(status, h, current, f);
    Metadata m;
    m.commit = h.get("x-repo-commit");
    m.etag = normalize_etag(h.get("x-linked-etag").empty() ? h.get("etag") : h.get("x-linked-etag"));
    m.location = redirect ? location : current;
    m.size = to_size(h.get("x-linked-size"));
    if (m.size < 0 && !redirect) m.size = to_size(h.get("content-length"));
    if (m.commit.empty())
      throw HubError(fmt::format("{} sent no X-Repo-Commit header: the server does not look like a Hugging Face hub "
                                 "(check HF_ENDPOINT, the proxy and firewall)",
                                 current));
    if (m.etag.empty())
      throw HubError(fmt::format("{} sent no ETag: the download could not be checked or cached reliably", current));
    if (m.size < 0) throw HubError(fmt::format("{} sent no file size (X-Linked-Size or Content-Length)", current));
    check_cache_name("commit hash", m.commit, current);
    check_cache_name("ETag", m.etag, current);
    return m;
  }
}

// Appends the response body to a file; restarts it when a ranged request got the whole file back.
struct Sink {
  Request* request;
  std::FILE* file;
  int64_t resume_from;
  int64_t written = 0;
  bool started = false;
  bool failed_write = false;
};

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto& sink = *static_cast<Sink*>(user);
  if (!sink.started) {
    sink.started = true;
    if (sink.resume_from > 0 && sink.request->status() == 200) {
      // The server ignored the Range header: what is on disk would be duplicated.
      if (::ftruncate(::fileno(sink.file), 0) != 0) {
        sink.failed_write = true;
        return 0;
      }
      sink.resume_from = 0;
    }
  }
  const size_t n = size * count;
  if (std::fwrite(data, 1, n, sink.file) != n) {
    sink.failed_write = true;
    return 0;
  }
  sink.written += static_cast<int64_t>(n);
  return n;
}

int64_t file_size_or_zero(const fs::path& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  return ec ? 0 : static_cast<int64_t>(size);
}

// Downloads `url` into `incomplete` (resuming what is there) until it holds `expected` bytes.
void download(const std::string& url, const fs::path& incomplete, int64_t expected, bool send_token,
              const FileRef& f) {
  const long timeout = timeout_seconds("HF_HUB_DOWNLOAD_TIMEOUT", 10);
  for (int resumes = 0;; ++resumes) {
    int64_t have = file_size_or_zero(incomplete);
    if (have > expected) {
      fs::remove(incomplete);
      have = 0;
    }
    if (have == expected && fs::exists(incomplete)) return;
    Request request(url, send_token);
    std::FILE* file = std::fopen(incomplete.c_str(), "ab");
    if (!file) throw HubError("Could not open " + incomplete.string() + " for writing");
    Sink sink{&request, file, have};
    if (have > 0) request.add_header(fmt::format("Range: bytes={}-", have));
    curl_easy_setopt(request.handle(), CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(request.handle(), CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(request.handle(), CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(request.handle(), CURLOPT_CONNECTTIMEOUT, timeout);
    // A stalled transfer (under 1 byte/s for the time-out) is abandoned rather than waited on forever.
    curl_easy_setopt(request.handle(), CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(request.handle(), CURLOPT_LOW_SPEED_TIME, timeout);
    curl_easy_setopt(request.handle(), CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(request.handle(), CURLOPT_WRITEDATA, &sink);
    const auto code = request.perform();
    const bool closed = std::fclose(file) == 0;
    if (sink.failed_write || !closed) throw HubError("Could not write " + incomplete.string() + " (disk full?)");
    const long status = request.status();
    if (code == CURLE_HTTP_RETURNED_ERROR && status == 416 && resumes < kMaxResumes) {
      fs::remove(incomplete);  // the partial file does not fit what the server has now
      continue;
    }
    if (code == CURLE_HTTP_RETURNED_ERROR) throw_http_error(status, request.headers(), url, f);
    const int64_t now = file_size_or_zero(incomplete);
    if (code != CURLE_OK) {
      if (sink.written > 0 && resumes < kMaxResumes) {
        log::logger().warn("Download of {} broke off at {} of {} bytes ({}); resuming", url, now, expected,
                           request.error(code));
        continue;
      }
      auto error = network_error(code, request, url, timeout, "HF_HUB_DOWNLOAD_TIMEOUT");
      if (now == 0) {
        fs::remove(incomplete);
        throw error;
      }
      throw HubError(fmt::format("{}. {} of {} bytes are kept in {}; the next call resumes from there.", error.what(),
                                 now, expected, incomplete.string()));
    }
    if (now != expected) {
      // The server finished a response of the wrong length: the bytes cannot be trusted to resume from.
      fs::remove(incomplete);
      throw HubError(fmt::format("Consistency check failed: {} should be {} bytes but the download from {} gave {}; "
                                 "nothing was cached, try again",
                                 f.filename, expected, url, now));
    }
    return;
  }
}

// An exclusive lock on a file, held while it lives (blocks while another process holds it).
class FileLock {
 public:
  explicit FileLock(const fs::path& path) {
    fs::create_directories(path.parent_path());
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw HubError("Could not open the lock file " + path.string());
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) {
        ::close(fd_);
        throw HubError("Could not lock " + path.string());
      }
    }
  }
  ~FileLock() {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

// snapshots/<commit>/<filename> -> ../../blobs/<etag> (relative, so the cache can move); a copy where
// symlinks cannot be made.
void create_pointer(const fs::path& blob, const fs::path& pointer) {
  fs::create_directories(pointer.parent_path());
  std::error_code ec;
  fs::remove(pointer, ec);
  fs::create_symlink(blob.lexically_relative(pointer.parent_path()), pointer, ec);
  if (ec) fs::copy_file(blob, pointer, fs::copy_options::overwrite_existing);
}

fs::path absolute_path(const std::string& p) { return fs::absolute(fs::path(p)).lexically_normal(); }

}  // namespace

std::string endpoint() {
  auto value = env("HF_ENDPOINT");
  if (value.empty()) value = "https://huggingface.co";
  while (!value.empty() && value.back() == '/') value.pop_back();
  return value;
}

std::string cache_dir() {
  if (auto hub_cache = env("HF_HUB_CACHE"); !hub_cache.empty()) return hub_cache;
  if (auto hf_home = env("HF_HOME"); !hf_home.empty()) return (fs::path(hf_home) / "hub").string();
  if (auto xdg = env("XDG_CACHE_HOME"); !xdg.empty()) return (fs::path(xdg) / "huggingface" / "hub").string();
  const auto home = env("HOME");
  if (home.empty())
    throw HubError("No cache folder for hub downloads: set HF_HUB_CACHE or HF_HOME (HOME is not set either)");
  return (fs::path(home) / ".cache" / "huggingface" / "hub").string();
}

bool offline() {
  const auto value = util::to_lower(env("HF_HUB_OFFLINE"));
  return value == "1" || value == "on" || value == "yes" || value == "true";
}

std::string hub_url(const std::string& repo_id, const std::string& filename, const std::string& revision) {
  return endpoint() + "/" + repo_id + "/resolve/" + quote(revision, false) + "/" + quote(filename, true);
}

std::string hf_hub_download(const std::string& repo_id, const std::string& filename, const std::string& revision) {
  check_arguments(repo_id, filename, revision);
  const FileRef f{repo_id, filename, revision};
  const auto cache = absolute_path(cache_dir());
  const auto storage = cache / repo_folder_name(repo_id);
  auto pointer_of = [&](const std::string& commit) { return storage / "snapshots" / commit / fs::path(filename); };
  // The cached file for `revision` without asking the server, or "" when there is none.
  auto cached = [&]() -> std::string {
    std::string commit = revision;
    if (!is_commit_hash(revision)) {
      const auto ref = storage / "refs" / revision;
      if (!fs::is_regular_file(ref)) return "";
      commit = trim(read_text(ref));
    }
    const auto pointer = pointer_of(commit);
    return !commit.empty() && fs::exists(pointer) ? pointer.string() : "";
  };

  // A commit is immutable: once cached it needs no look-up.
  if (is_commit_hash(revision) && fs::exists(pointer_of(revision))) return pointer_of(revision).string();
  if (offline()) {
    if (auto path = cached(); !path.empty()) return path;
    throw HubError(fmt::format("'{}' of repository '{}' (revision '{}') is not in the cache at {} and HF_HUB_OFFLINE=1 "
                               "is set; unset HF_HUB_OFFLINE to download it, or fill the cache where the hub can be "
                               "reached (huggingface_hub uses the same layout)",
                               filename, repo_id, revision, storage.string()));
  }

  const auto url = hub_url(repo_id, filename, revision);
  Metadata meta;
  try {
    meta = fetch_metadata(url, f);
  } catch (const NotOnHub&) {
    throw;
  } catch (const HubError& error) {
    // No connection, a server error or no access: the cached file for this revision, if any.
    if (auto path = cached(); !path.empty()) {
      log::logger().warn("{}; using the cached {}", error.what(), path);
      return path;
    }
    throw;
  }

  const auto pointer = pointer_of(meta.commit);
  const bool have_pointer = fs::exists(pointer);
  // The ref maps a branch or tag to its commit for later offline use; a read-only cache that already
  // holds the file is still usable.
  const auto ref = storage / "refs" / revision;
  if (meta.commit != revision && (!fs::is_regular_file(ref) || trim(read_text(ref)) != meta.commit)) {
    try {
      write_text_atomic(ref, meta.commit);
    } catch (const std::exception&) {
      if (!have_pointer) throw;
    }
  }
  if (have_pointer) return pointer.string();

  const auto blob = storage / "blobs" / meta.etag;
  FileLock lock(cache / ".locks" / repo_folder_name(repo_id) / (meta.etag + ".lock"));
  if (!fs::exists(blob)) {
    const fs::path incomplete = blob.string() + ".incomplete";
    fs::create_directories(blob.parent_path());
    // A signed CDN address must not receive the hub token.
    download(meta.location, incomplete, meta.size, host_of(meta.location) == host_of(url), f);
    fs::rename(incomplete, blob);
  }
  if (!fs::exists(pointer)) create_pointer(blob, pointer);
  return pointer.string();
}

}  // namespace smp::hub
