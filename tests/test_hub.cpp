// hf_hub_download against a loopback server speaking the hub's resolve protocol: cache layout, reuse,
// offline mode, resumed and corrupt downloads, errors, and pretrained encoder weights by name.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <smp/fill.h>
#include <smp/hub.h>
#include <smp/io.h>
#include <smp/smp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <random>
#include <regex>
#include <sstream>
#include <thread>

#include "support.h"

using namespace smp::test;

namespace {

namespace fs = std::filesystem;

constexpr const char* kCommit = "0123456789abcdef0123456789abcdef01234567";

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const fs::path& path, const std::string& data) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << data;
}

std::string random_bytes(size_t n, unsigned seed = 1) {
  std::mt19937 gen(seed);
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(gen() & 0xff);
  return out;
}

// FNV-1a, as a quoted ETag the way servers send it.
std::string etag_of(const std::string& data) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : data) h = (h ^ c) * 1099511628211ull;
  std::ostringstream s;
  s << std::hex << h;
  return s.str();
}

struct Logged {
  std::string method, path, range;
};

// A single-threaded HTTP/1.1 server on 127.0.0.1 (ephemeral port) serving root/<repo>/resolve/<rev>/<file>
// as the hub does: X-Repo-Commit (the revision when it is a commit hash), ETag, Range requests. It can
// also refuse with a status, cut GET bodies short, send complete but wrong-length bodies, hang, or
// redirect files to an absolute "/cdn" address with X-Linked-* headers as the hub does for large files.
class HubServer {
 public:
  explicit HubServer(fs::path root) : root_(std::move(root)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd_, 16) != 0)
      throw std::runtime_error("test server: cannot listen on 127.0.0.1");
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { loop(); });
  }
  ~HubServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }

  void fail_with(int status, std::string error_code = "") {
    std::lock_guard<std::mutex> g(mu_);
    fail_status_ = status;
    fail_code_ = std::move(error_code);
  }
  void cut_gets(int count, size_t bytes) {
    std::lock_guard<std::mutex> g(mu_);
    cut_count_ = count;
    cut_bytes_ = bytes;
  }
  void short_bodies(bool on) { short_ = on; }
  void hang(bool on) { hang_ = on; }
  void redirect_to_cdn(bool on) { cdn_ = on; }
  std::vector<Logged> log() const {
    std::lock_guard<std::mutex> g(mu_);
    return log_;
  }
  void clear_log() {
    std::lock_guard<std::mutex> g(mu_);
    log_.clear();
  }

 private:
  void loop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int client = ::accept(fd_, nullptr, nullptr);
      if (client < 0) continue;
      serve(client);
      ::close(client);
    }
  }

  static void send_all(int fd, const std::string& data) {
    size_t sent = 0;
    while (sent < data.size()) {
      const auto n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return;
      sent += static_cast<size_t>(n);
    }
  }

  static std::string status_line(int status) {
    const char* text = status == 200   ? "OK"
                       : status == 206 ? "Partial Content"
                       : status == 302 ? "Found"
                       : status == 404 ? "Not Found"
                       : status == 416 ? "Range Not Satisfiable"
                                       : "Error";
    return "HTTP/1.1 " + std::to_string(status) + " " + text + "\r\n";
  }

  void serve(int client) {
    std::string request;
    char buf[4096];
    while (request.find("\r\n\r\n") == std::string::npos) {
      const auto n = ::recv(client, buf, sizeof buf, 0);
      if (n <= 0) return;
      request.append(buf, static_cast<size_t>(n));
    }
    std::istringstream lines(request);
    Logged entry;
    std::string version, line;
    lines >> entry.method >> entry.path >> version;
    std::getline(lines, line);
    while (std::getline(lines, line) && line != "\r") {
      const auto colon = line.find(':');
      if (colon != std::string::npos && line.substr(0, colon) == "Range") entry.range = line.substr(colon + 2, line.size() - colon - 3);
    }
    {
      std::lock_guard<std::mutex> g(mu_);
      log_.push_back(entry);
    }
    if (hang_) {  // answer nothing until the client gives up (or the test ends)
      for (int i = 0; i < 100 && !stop_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      return;
    }
    int fail_status;
    std::string fail_code;
    {
      std::lock_guard<std::mutex> g(mu_);
      fail_status = fail_status_;
      fail_code = fail_code_;
    }
    const std::string close = "Connection: close\r\nContent-Length: 0\r\n\r\n";
    if (fail_status) {
      send_all(client, status_line(fail_status) + (fail_code.empty() ? "" : "X-Error-Code: " + fail_code + "\r\n") + close);
      return;
    }
    auto path = entry.path.substr(0, entry.path.find('?'));
    const bool from_cdn = path.rfind("/cdn/", 0) == 0;
    if (from_cdn) path = path.substr(4);
    // /<org>/<name>/resolve/<revision>/<file>
    std::vector<std::string> parts;
    std::stringstream ps(path.substr(1));
    for (std::string part; std::getline(ps, part, '/');) parts.push_back(part);
    const auto file = root_ / path.substr(1);
    if (parts.size() < 5 || parts[2] != "resolve" || path.find("..") != std::string::npos || !fs::is_regular_file(file)) {
      const bool repo_exists = parts.size() >= 2 && fs::is_directory(root_ / parts[0] / parts[1]);
      send_all(client, status_line(404) + "X-Error-Code: " + (repo_exists ? "EntryNotFound" : "RepoNotFound") + "\r\n" + close);
      return;
    }
    const auto& revision = parts[3];
    const bool is_commit = revision.size() == 40 && revision.find_first_not_of("0123456789abcdef") == std::string::npos;
    const std::string data = read_file(file);
    const std::string etag = etag_of(data);
    std::string hub_headers = "X-Repo-Commit: " + std::string(is_commit ? revision : kCommit) + "\r\n";
    if (cdn_ && !from_cdn) {
      send_all(client, status_line(302) + hub_headers + "X-Linked-Etag: \"" + etag + "\"\r\nX-Linked-Size: " +
                           std::to_string(data.size()) + "\r\nLocation: " + url() + "/cdn" + path + "?signature=x\r\n" +
                           close);
      return;
    }
    if (!from_cdn) hub_headers += "ETag: W/\"" + etag + "\"\r\n";
    size_t begin = 0;
    int status = 200;
    if (entry.method == "GET" && entry.range.rfind("bytes=", 0) == 0) {
      begin = std::stoul(entry.range.substr(6));
      if (begin >= data.size()) {
        send_all(client, status_line(416) + close);
        return;
      }
      status = 206;
      hub_headers += "Content-Range: bytes " + std::to_string(begin) + "-" + std::to_string(data.size() - 1) + "/" +
                     std::to_string(data.size()) + "\r\n";
    }
    std::string body = data.substr(begin);
    size_t declared = body.size();
    if (entry.method == "GET" && short_) body.pop_back(), declared = body.size();  // complete, but wrong
    std::string head = status_line(status) + hub_headers + "Content-Length: " + std::to_string(declared) +
                       "\r\nConnection: close\r\n\r\n";
    if (entry.method == "HEAD") {
      send_all(client, head);
      return;
    }
    {
      std::lock_guard<std::mutex> g(mu_);
      if (cut_count_ > 0) {  // promise the whole body, deliver a part, hang up
        --cut_count_;
        body = body.substr(0, std::min(body.size(), cut_bytes_));
      }
    }
    send_all(client, head + body);
    ::shutdown(client, SHUT_RDWR);
  }

  fs::path root_;
  int fd_ = -1, port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false}, short_{false}, hang_{false}, cdn_{false};
  mutable std::mutex mu_;
  std::vector<Logged> log_;
  int fail_status_ = 0;
  std::string fail_code_;
  int cut_count_ = 0;
  size_t cut_bytes_ = 0;
};

// Each test gets a served folder, a server, an empty cache, and huggingface_hub's variables pointing
// there; the variables are restored afterwards.
class Hub : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : kVars) {
      const char* v = std::getenv(name);
      saved_.emplace_back(name, v ? std::optional<std::string>(v) : std::nullopt);
      ::unsetenv(name);
    }
    dir_ = fs::temp_directory_path() / ("smp_hub_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(served());
    server_ = std::make_unique<HubServer>(served());
    ::setenv("HF_ENDPOINT", server_->url().c_str(), 1);
    ::setenv("HF_HUB_CACHE", cache().c_str(), 1);
  }
  void TearDown() override {
    server_.reset();
    fs::remove_all(dir_);
    for (const auto& [name, value] : saved_) {
      if (value)
        ::setenv(name.c_str(), value->c_str(), 1);
      else
        ::unsetenv(name.c_str());
    }
  }

  fs::path served() const { return dir_ / "served"; }
  fs::path cache() const { return dir_ / "cache"; }
  fs::path repo_cache(const std::string& folder = "models--org--model") const { return cache() / folder; }
  // Puts a file on the server at revision `rev` of `repo`.
  void serve(const std::string& repo, const std::string& filename, const std::string& data,
             const std::string& rev = "main") {
    write_file(served() / repo / "resolve" / rev / filename, data);
  }
  std::vector<std::string> methods() const {
    std::vector<std::string> out;
    for (const auto& e : server_->log()) out.push_back(e.method);
    return out;
  }

  static constexpr const char* kVars[] = {"HF_ENDPOINT",  "HF_HUB_CACHE",        "HF_HOME",
                                          "HF_HUB_OFFLINE", "HF_HUB_ETAG_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT",
                                          "HF_TOKEN",     "XDG_CACHE_HOME",      "HOME"};
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
  fs::path dir_;
  std::unique_ptr<HubServer> server_;
};

TEST_F(Hub, DownloadsIntoHuggingfaceHubsCacheLayout) {
  const auto data = random_bytes(100000);
  serve("org/model", "model.safetensors", data);
  serve("org/model", "sub/config.json", "{}");
  const auto path = smp::hub::hf_hub_download("org/model", "model.safetensors");
  const auto snapshot = repo_cache() / "snapshots" / kCommit;
  EXPECT_EQ(fs::path(path), snapshot / "model.safetensors");
  EXPECT_EQ(read_file(path), data);
  // The snapshot entry is a relative link to the blob named by the (normalised) ETag.
  ASSERT_TRUE(fs::is_symlink(path));
  EXPECT_EQ(fs::read_symlink(path), fs::path("../../blobs") / etag_of(data));
  EXPECT_EQ(read_file(repo_cache() / "blobs" / etag_of(data)), data);
  EXPECT_EQ(read_file(repo_cache() / "refs" / "main"), kCommit);
  EXPECT_FALSE(fs::exists(repo_cache() / "blobs" / (etag_of(data) + ".incomplete")));
  EXPECT_EQ(methods(), (std::vector<std::string>{"HEAD", "GET"}));
  EXPECT_EQ(server_->log()[0].path, "/org/model/resolve/main/model.safetensors");

  const auto nested = smp::hub::hf_hub_download("org/model", "sub/config.json");
  EXPECT_EQ(fs::read_symlink(nested), fs::path("../../../blobs") / etag_of("{}"));
  EXPECT_EQ(read_file(nested), "{}");
}

TEST_F(Hub, CachedFilesAreReused) {
  const auto data = random_bytes(5000);
  serve("org/model", "model.safetensors", data);
  serve("org/model", "model.safetensors", data, kCommit);
  const auto first = smp::hub::hf_hub_download("org/model", "model.safetensors");
  server_->clear_log();
  // A branch is looked up again (it may have moved), as huggingface_hub does, but nothing is downloaded.
  EXPECT_EQ(smp::hub::hf_hub_download("org/model", "model.safetensors"), first);
  EXPECT_EQ(methods(), (std::vector<std::string>{"HEAD"}));
  server_->clear_log();
  // A cached commit is immutable: no request at all.
  EXPECT_EQ(smp::hub::hf_hub_download("org/model", "model.safetensors", kCommit), first);
  EXPECT_TRUE(server_->log().empty());
  // The same contents under another name share the blob.
  serve("org/model", "copy.safetensors", data);
  server_->clear_log();
  const auto copy = smp::hub::hf_hub_download("org/model", "copy.safetensors");
  EXPECT_EQ(methods(), (std::vector<std::string>{"HEAD"}));
  EXPECT_EQ(fs::read_symlink(copy), fs::read_symlink(first));
}

TEST_F(Hub, OfflineModeUsesOnlyTheCache) {
  serve("org/model", "model.safetensors", "weights");
  const auto path = smp::hub::hf_hub_download("org/model", "model.safetensors");
  server_->clear_log();
  ::setenv("HF_HUB_OFFLINE", "1", 1);
  EXPECT_TRUE(smp::hub::offline());
  EXPECT_EQ(smp::hub::hf_hub_download("org/model", "model.safetensors"), path);
  EXPECT_EQ(smp::hub::hf_hub_download("org/model", "model.safetensors", kCommit), path);
  serve("org/model", "other.safetensors", "x");
  try {
    smp::hub::hf_hub_download("org/model", "other.safetensors");
    FAIL() << "no error";
  } catch (const smp::hub::HubError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("'other.safetensors' of repository 'org/model' (revision 'main') is not in the cache at " +
                       repo_cache().string() + " and HF_HUB_OFFLINE=1 is set"),
              std::string::npos)
        << msg;
  }
  EXPECT_NE(error_of([] { smp::hub::hf_hub_download("org/never", "model.safetensors", "v1"); })
                .find("HF_HUB_OFFLINE=1 is set"),
            std::string::npos);
  EXPECT_TRUE(server_->log().empty());
  ::setenv("HF_HUB_OFFLINE", "0", 1);
  EXPECT_FALSE(smp::hub::offline());
}

TEST_F(Hub, BrokenTransferIsResumedWithARangeRequest) {
  const auto data = random_bytes(50000, 2);
  serve("org/model", "model.safetensors", data);
  server_->cut_gets(1, 12000);
  const auto path = smp::hub::hf_hub_download("org/model", "model.safetensors");
  EXPECT_EQ(read_file(path), data);
  const auto log = server_->log();
  ASSERT_EQ(log.size(), 3u);
  EXPECT_EQ(log[1].method, "GET");
  EXPECT_EQ(log[1].range, "");
  EXPECT_EQ(log[2].range, "bytes=12000-");
}

TEST_F(Hub, PartialDownloadIsKeptAndResumedByTheNextCall) {
  const auto data = random_bytes(20000, 3);
  serve("org/model", "model.safetensors", data);
  server_->cut_gets(100, 1000);  // every GET breaks off after 1000 bytes: the call gives up
  const auto blob = repo_cache() / "blobs" / etag_of(data);
  const auto msg = error_of([] { smp::hub::hf_hub_download("org/model", "model.safetensors"); });
  EXPECT_NE(msg.find("the next call resumes"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(blob));
  EXPECT_FALSE(fs::exists(repo_cache() / "snapshots" / kCommit / "model.safetensors"));
  const auto incomplete = fs::path(blob.string() + ".incomplete");
  ASSERT_TRUE(fs::exists(incomplete));
  const auto kept = fs::file_size(incomplete);
  EXPECT_EQ(kept, 6000u);  // the first attempt and five resumes
  EXPECT_EQ(read_file(incomplete), data.substr(0, kept));

  server_->cut_gets(0, 0);
  server_->clear_log();
  const auto path = smp::hub::hf_hub_download("org/model", "model.safetensors");
  EXPECT_EQ(read_file(path), data);
  EXPECT_FALSE(fs::exists(incomplete));
  ASSERT_EQ(server_->log().size(), 2u);
  EXPECT_EQ(server_->log()[1].range, "bytes=" + std::to_string(kept) + "-");
}

TEST_F(Hub, WrongLengthDownloadIsNotCached) {
  const auto data = random_bytes(3000, 4);
  serve("org/model", "model.safetensors", data);
  server_->short_bodies(true);  // HEAD announces 3000 bytes, GET sends a complete 2999-byte response
  const auto msg = error_of([] { smp::hub::hf_hub_download("org/model", "model.safetensors"); });
  EXPECT_NE(msg.find("Consistency check failed: model.safetensors should be 3000 bytes"), std::string::npos) << msg;
  const auto blob = repo_cache() / "blobs" / etag_of(data);
  EXPECT_FALSE(fs::exists(blob));
  EXPECT_FALSE(fs::exists(blob.string() + ".incomplete"));
  EXPECT_FALSE(fs::exists(repo_cache() / "snapshots" / kCommit / "model.safetensors"));
  server_->short_bodies(false);
  EXPECT_EQ(read_file(smp::hub::hf_hub_download("org/model", "model.safetensors")), data);
}

TEST_F(Hub, LargeFilesFollowTheAbsoluteRedirect) {
  const auto data = random_bytes(4000, 5);
  serve("org/model", "model.safetensors", data);
  server_->redirect_to_cdn(true);
  const auto path = smp::hub::hf_hub_download("org/model", "model.safetensors");
  EXPECT_EQ(read_file(path), data);
  EXPECT_EQ(fs::read_symlink(path), fs::path("../../blobs") / etag_of(data));  // X-Linked-Etag names the blob
  const auto log = server_->log();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[1].method, "GET");
  EXPECT_EQ(log[1].path, "/cdn/org/model/resolve/main/model.safetensors?signature=x");
}

TEST_F(Hub, HttpErrorsNameTheProblem) {
  serve("org/model", "model.safetensors", "x");
  auto status_of = [](const std::function<void()>& fn) {
    try {
      fn();
    } catch (const smp::hub::HubError& e) {
      return e.status();
    }
    return 0;
  };
  auto missing_file = [] { smp::hub::hf_hub_download("org/model", "nope.bin"); };
  EXPECT_EQ(status_of(missing_file), 404);
  EXPECT_NE(error_of(missing_file).find("File 'nope.bin' not found in repository 'org/model' at revision 'main'"),
            std::string::npos);
  EXPECT_NE(error_of([] { smp::hub::hf_hub_download("org/none", "model.safetensors"); })
                .find("Repository 'org/none' not found"),
            std::string::npos);
  server_->fail_with(403, "GatedRepo");
  auto gated = error_of([] { smp::hub::hf_hub_download("org/model", "model.safetensors"); });
  EXPECT_NE(gated.find("forbidden"), std::string::npos) << gated;
  EXPECT_NE(gated.find("HF_TOKEN"), std::string::npos) << gated;
  server_->fail_with(401);
  EXPECT_NE(error_of([] { smp::hub::hf_hub_download("org/model", "model.safetensors"); }).find("HTTP 401"),
            std::string::npos);
  server_->fail_with(500);
  EXPECT_NE(error_of([] { smp::hub::hf_hub_download("org/model", "model.safetensors"); }).find("answered HTTP 500"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(repo_cache() / "blobs"));
}

TEST_F(Hub, UnreachableServerFallsBackToTheCacheOrSaysSo) {
  serve("org/model", "model.safetensors", "cached");
  const auto path = smp::hub::hf_hub_download("org/model", "model.safetensors");
  server_.reset();  // nothing listens on that port any more
  EXPECT_EQ(smp::hub::hf_hub_download("org/model", "model.safetensors"), path);
  const auto msg = error_of([] { smp::hub::hf_hub_download("org/model", "other.bin"); });
  EXPECT_NE(msg.find("Could not connect to http://127.0.0.1:"), std::string::npos) << msg;
}

TEST_F(Hub, SilentServerTimesOut) {
  serve("org/model", "model.safetensors", "x");
  server_->hang(true);
  ::setenv("HF_HUB_ETAG_TIMEOUT", "1", 1);
  const auto start = std::chrono::steady_clock::now();
  const auto msg = error_of([] { smp::hub::hf_hub_download("org/model", "model.safetensors"); });
  EXPECT_NE(msg.find("Timed out after 1 s"), std::string::npos) << msg;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(4));
  ::setenv("HF_HUB_ETAG_TIMEOUT", "soon", 1);
  EXPECT_NE(error_of([] { smp::hub::hf_hub_download("org/model", "model.safetensors"); })
                .find("HF_HUB_ETAG_TIMEOUT=soon is not a number of seconds"),
            std::string::npos);
}

TEST_F(Hub, EndpointComesFromHfEndpoint) {
  HubServer mirror(served());
  serve("org/model", "model.safetensors", "mirrored");
  ::setenv("HF_ENDPOINT", (mirror.url() + "/").c_str(), 1);
  EXPECT_EQ(smp::hub::endpoint(), mirror.url());
  EXPECT_EQ(smp::hub::hub_url("org/model", "a b/c.json", "v1.0"), mirror.url() + "/org/model/resolve/v1.0/a%20b/c.json");
  EXPECT_EQ(read_file(smp::hub::hf_hub_download("org/model", "model.safetensors")), "mirrored");
  EXPECT_EQ(mirror.log().size(), 2u);
  EXPECT_TRUE(server_->log().empty());
  ::unsetenv("HF_ENDPOINT");
  EXPECT_EQ(smp::hub::endpoint(), "https://huggingface.co");
}

TEST_F(Hub, CacheFolderFollowsHuggingfaceHubsVariables) {
  EXPECT_EQ(smp::hub::cache_dir(), cache().string());
  ::unsetenv("HF_HUB_CACHE");
  ::setenv("HF_HOME", "/data/hf", 1);
  ::setenv("XDG_CACHE_HOME", "/data/xdg", 1);
  EXPECT_EQ(smp::hub::cache_dir(), "/data/hf/hub");
  ::unsetenv("HF_HOME");
  EXPECT_EQ(smp::hub::cache_dir(), "/data/xdg/huggingface/hub");
  ::unsetenv("XDG_CACHE_HOME");
  ::setenv("HOME", "/home/someone", 1);
  EXPECT_EQ(smp::hub::cache_dir(), "/home/someone/.cache/huggingface/hub");
}

TEST_F(Hub, RejectsBadArguments) {
  for (const auto& repo : {"a/b/c", "", "a--b", "/a", "a/", "a b"})
    EXPECT_THROW(smp::hub::hf_hub_download(repo, "model.safetensors"), std::invalid_argument) << repo;
  for (const auto& file : {"../x", "/etc/passwd", "a/../../b", "a//b", ""})
    EXPECT_THROW(smp::hub::hf_hub_download("org/model", file), std::invalid_argument) << file;
  EXPECT_THROW(smp::hub::hf_hub_download("org/model", "x", "../main"), std::invalid_argument);
  EXPECT_TRUE(server_->log().empty());
}

// Pretrained weights by name: smp's own encoders from smp-hub at the revision smp pins.
TEST_F(Hub, SmpEncoderWeightsByName) {
  auto source = smp::create_encoder(smp::EncoderOptions().name("mit_b0"));
  smp::fill::fill_module(*source);
  const auto tensors = smp::io::state_dict(*source);
  const std::string revision = "9ce53d104d92d75aabb00aae70677aaab67e7c84";
  serve("smp-hub/mit_b0.imagenet", "model.safetensors", smp::io::serialize_safetensors(tensors), revision);
  auto encoder = smp::create_encoder(smp::EncoderOptions().name("mit_b0").weights("imagenet"));
  for (const auto& [key, value] : smp::io::state_dict(*encoder)) EXPECT_TRUE(torch::equal(value, tensors.at(key))) << key;
  ASSERT_FALSE(server_->log().empty());
  EXPECT_EQ(server_->log()[0].path, "/smp-hub/mit_b0.imagenet/resolve/" + revision + "/model.safetensors");
  server_->clear_log();
  auto gray = smp::create_encoder(smp::EncoderOptions().name("mit_b0").weights("imagenet").in_channels(1));
  EXPECT_TRUE(server_->log().empty());  // a pinned commit is served from the cache
  EXPECT_TRUE(torch::allclose(smp::io::state_dict(*gray).at("patch_embed1.proj.weight"),
                              tensors.at("patch_embed1.proj.weight").sum(1, true)));
  EXPECT_NE(error_of([] { smp::create_encoder(smp::EncoderOptions().name("mit_b0").weights("ssl")); })
                .find("Wrong pretrained weights `ssl` for encoder `mit_b0`. Available options are: ['imagenet']"),
            std::string::npos);
  EXPECT_NE(error_of([] { smp::create_encoder(smp::EncoderOptions().name("resnet18").weights("imagenet21k")); })
                .find("Available options are: ['imagenet', 'ssl', 'swsl']"),
            std::string::npos);
}

// One encoder of each kind of smp weights file: the repository spells '+' as '-', the files hold the
// classifier smp drops, densenet's older files the key pattern smp renames, and mobileone adapts both
// convolutions of its first block to one input channel.
TEST_F(Hub, SmpEncoderWeightsFilesAsSmpLoadsThem) {
  struct Case {
    std::string encoder, weights, repo, revision;
    smp::io::TensorMap extra;                                      // what smp's loader drops
    std::function<std::string(const std::string&)> file_key;      // module key -> key in the file
    int64_t in_channels;
  };
  const auto same = [](const std::string& key) { return key; };
  const std::vector<Case> cases = {
      {"dpn68b", "imagenet+5k", "smp-hub/dpn68b.imagenet-5k", "6c6615e77688e390ae0eaa81e26821fbd83cee4b",
       {{"last_linear.weight", torch::zeros({1000, 832, 1, 1})}}, same, 3},
      {"inceptionv4", "imagenet+background", "smp-hub/inceptionv4.imagenet-background",
       "8c2a48e20d2709ee64f8421c61be309f05bfa536", {{"last_linear.bias", torch::zeros({1001})}}, same, 3},
      {"densenet121", "imagenet", "smp-hub/densenet121.imagenet", "a17c96896a265b61338f66f61d3887b24f61995a",
       {{"classifier.weight", torch::zeros({1000, 1024})}},
       [](const std::string& key) {  // torchvision's old names: denselayerN.norm.1 for norm1
         static const std::regex pattern(R"(^(.*denselayer\d+\.(?:norm|relu|conv))([12])\.(weight|bias|running_mean|running_var)$)");
         return std::regex_replace(key, pattern, "$1.$2.$3");
       },
       3},
      {"mobileone_s0", "imagenet", "smp-hub/mobileone_s0.imagenet", "f52815cf0ad29278a9860c9cd5fabf19f904bedf",
       {{"linear.weight", torch::zeros({1000, 1024})}}, same, 1},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.encoder);
    auto source = smp::create_encoder(smp::EncoderOptions().name(c.encoder));
    smp::fill::fill_module(*source);
    const auto tensors = smp::io::state_dict(*source);
    auto file = c.extra;
    for (const auto& [key, value] : tensors) file[c.file_key(key)] = value;
    if (c.encoder == "densenet121") ASSERT_TRUE(file.count("features.denseblock1.denselayer1.norm.1.weight"));
    serve(c.repo, "model.safetensors", smp::io::serialize_safetensors(file), c.revision);
    server_->clear_log();
    auto encoder = smp::create_encoder(smp::EncoderOptions().name(c.encoder).weights(c.weights).in_channels(c.in_channels));
    ASSERT_FALSE(server_->log().empty());
    EXPECT_EQ(server_->log()[0].path, "/" + c.repo + "/resolve/" + c.revision + "/model.safetensors");
    for (const auto& [key, value] : smp::io::state_dict(*encoder)) {
      const auto& want = tensors.at(key);
      if (value.sizes() == want.sizes())
        EXPECT_TRUE(torch::equal(value, want)) << key;
      else  // a first convolution summed over its input channels
        EXPECT_TRUE(torch::allclose(value, want.sum(1, true))) << key;
    }
  }
  // Each weights name brings its own preprocessing (DPN's were trained on other statistics).
  const auto dpn = smp::get_preprocessing_params("dpn68b", "imagenet+5k");
  EXPECT_NEAR(dpn.mean[0], 124.0 / 255, 1e-9);
  EXPECT_NEAR(dpn.std[0], 1 / (0.0167 * 255), 1e-9);
  EXPECT_EQ(smp::get_preprocessing_params("inceptionv4", "imagenet").mean, (std::vector<double>{0.5, 0.5, 0.5}));
}

// timm encoders: "tu-<model>.<tag>" (timm's default tag without one) from timm/<model>.<tag>.
TEST_F(Hub, TimmEncoderWeightsByTag) {
  auto full = smp::timm::create_model("test_resnet");
  smp::fill::fill_module(*full);
  const auto file = smp::io::serialize_safetensors(smp::io::state_dict(*full));
  serve("timm/test_resnet.r160_in1k", "model.safetensors", file);
  const auto local = (dir_ / "local.safetensors").string();
  write_file(local, file);
  const auto expected = smp::io::state_dict(*smp::create_encoder(smp::EncoderOptions().name("tu-test_resnet").weights(local)));
  EXPECT_EQ(smp::timm::split_model_name_tag("test_resnet.r160_in1k"),
            (std::pair<std::string, std::string>{"test_resnet", "r160_in1k"}));
  EXPECT_EQ(smp::timm::pretrained_repo("test_resnet"), "timm/test_resnet.r160_in1k");
  for (const auto& name : {"tu-test_resnet", "tu-test_resnet.r160_in1k"}) {
    server_->clear_log();
    auto encoder = smp::create_encoder(smp::EncoderOptions().name(name).weights("True"));
    for (const auto& [key, value] : smp::io::state_dict(*encoder)) EXPECT_TRUE(torch::equal(value, expected.at(key))) << key;
    ASSERT_FALSE(server_->log().empty());
    EXPECT_EQ(server_->log()[0].path, "/timm/test_resnet.r160_in1k/resolve/main/model.safetensors");
  }
  // smp's "imagenet" default also switches the tag's weights on.
  auto unet = smp::Unet(smp::UnetOptions().encoder_name("tu-test_resnet.r160_in1k").encoder_weights("imagenet"));
  server_->clear_log();
  smp::create_encoder(smp::EncoderOptions().name("tu-test_resnet.r160_in1k"));  // no weights asked: no request
  EXPECT_TRUE(server_->log().empty());
  EXPECT_NE(error_of([] { smp::create_encoder(smp::EncoderOptions().name("tu-test_resnet.bogus")); })
                .find("Invalid pretrained tag (bogus) for test_resnet. Its tags are: r160_in1k"),
            std::string::npos);
  EXPECT_NE(error_of([] { smp::create_encoder(smp::EncoderOptions().name("tu-test_vit4").weights("True")); })
                .find("No pretrained weights exist for test_vit4.r160_in1k on the hub"),
            std::string::npos);
  EXPECT_TRUE(server_->log().empty());
}

TEST_F(Hub, DeprecatedTimmNamesMapToTheCurrentModelAndTag) {
  EXPECT_EQ(smp::timm::split_model_name_tag("tv_resnet50"), (std::pair<std::string, std::string>{"resnet50", "tv_in1k"}));
  EXPECT_EQ(smp::timm::split_model_name_tag("tf_efficientnet_b0_ns"),
            (std::pair<std::string, std::string>{"tf_efficientnet_b0", "ns_jft_in1k"}));
  EXPECT_EQ(smp::timm::pretrained_repo("swsl_resnext50_32x4d"), "timm/resnext50_32x4d.fb_swsl_ig1b_ft_in1k");
  EXPECT_TRUE(smp::timm::is_model("gluon_resnet50_v1b"));
  // The encoder is the current model's; deprecated names are not listed (as in timm's list_models).
  auto encoder = smp::create_encoder(smp::EncoderOptions().name("tu-tv_resnet34"));
  EXPECT_EQ(encoder->out_channels(), (std::vector<int64_t>{3, 64, 64, 128, 256, 512}));
  EXPECT_TRUE(smp::timm::list_models("tv_resnet*").empty());
}

}  // namespace

// smp's from_pretrained("org/name"): config.json and the weights come through the hub cache.
TEST_F(Hub, FromPretrainedTakesAHubModelId) {
  torch::manual_seed(0);
  auto model = smp::create_model("Unet", {"encoder_name=resnet18", "encoder_depth=3", "decoder_channels=[16,8,4]"});
  const auto saved = dir_ / "saved";
  model->save_pretrained(saved.string());
  serve("org/unet", "config.json", read_file(saved / "config.json"));
  serve("org/unet", "model.safetensors", read_file(saved / "model.safetensors"));
  auto loaded = smp::from_pretrained("org/unet");
  EXPECT_EQ(loaded->arch(), "Unet");
  EXPECT_TRUE(fs::exists(repo_cache("models--org--unet") / "snapshots" / kCommit / "model.safetensors"));
  model->eval();
  const auto x = torch::randn({1, 3, 64, 64});
  EXPECT_TRUE(torch::equal(model->forward(x), loaded->forward(x)));

  const auto missing = error_of([] { smp::from_pretrained("org/none"); });
  EXPECT_NE(missing.find("no local folder"), std::string::npos) << missing;
  EXPECT_NE(missing.find("Repository 'org/none' not found"), std::string::npos) << missing;
}
