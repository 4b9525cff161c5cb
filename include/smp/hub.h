// Files from the Hugging Face hub (or a mirror), cached the way huggingface_hub caches them so both
// share one cache:
//   <cache>/models--<org>--<name>/blobs/<etag>                      the file contents
//   <cache>/models--<org>--<name>/snapshots/<commit>/<filename>     symlink to the blob (a copy where
//                                                                   symlinks are not possible)
//   <cache>/models--<org>--<name>/refs/<revision>                   the commit a branch or tag named
// Environment, as huggingface_hub reads it: HF_ENDPOINT, HF_HUB_CACHE / HF_HOME, HF_HUB_OFFLINE,
// HF_TOKEN, HF_HUB_ETAG_TIMEOUT and HF_HUB_DOWNLOAD_TIMEOUT (seconds).
#pragma once

#include <stdexcept>
#include <string>

namespace smp::hub {

// A file that could not be found, fetched or cached. status: the HTTP status of the failing
// response, 0 when there was none (no connection, time-out, offline mode, a local problem).
class HubError : public std::runtime_error {
 public:
  explicit HubError(const std::string& what, int status = 0) : std::runtime_error(what), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

// HF_ENDPOINT without trailing '/', default https://huggingface.co.
std::string endpoint();
// HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub.
std::string cache_dir();
// HF_HUB_OFFLINE is 1, ON, YES or TRUE (any case).
bool offline();

// {endpoint}/{repo_id}/resolve/{revision}/{filename}
std::string hub_url(const std::string& repo_id, const std::string& filename, const std::string& revision = "main");

// The local path of `filename` of model repository `repo_id` at `revision` (branch, tag or commit
// hash), downloaded into the cache unless it is there. A commit hash already in the cache, and any
// revision in offline mode, is resolved without network; so is a cached revision when the hub cannot
// be reached. Downloads go to blobs/<etag>.incomplete first, resume from what is there with a Range
// request, are checked against the announced size and renamed into place only when complete.
// Bad arguments throw std::invalid_argument; everything else throws HubError.
std::string hf_hub_download(const std::string& repo_id, const std::string& filename,
                            const std::string& revision = "main");

}  // namespace smp::hub
