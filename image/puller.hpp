#pragma once
// Puller: resolves a reference on a registry (index -> platform manifest -> config -> layers),
// downloads every blob into the content store (layers concurrently) and returns the image
// record. It does not record the image: the service does that after the filesystem image is
// built, so a layer that fails to unpack never leaves a usable-looking image behind.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "image/content_store.hpp"
#include "image/http_client.hpp"
#include "image/image_store.hpp"
#include "image/manifest.hpp"
#include "image/registry_client.hpp"
#include "image/registry_config.hpp"

namespace frakti::image {

/// One progress event of a pull. Delivered from download threads, serialised by the puller.
struct PullProgress {
  enum class Kind { resolved, blob_start, blob_bytes, blob_done, blob_cached, building, done };
  Kind kind;
  Digest digest;
  uint64_t current = 0;  ///< bytes so far (blob_bytes, blob_done)
  uint64_t total = 0;    ///< expected size
  std::string text;      ///< resolved: the manifest digest; building: the format
};
using ProgressFn = std::function<void(const PullProgress&)>;

struct PullOptions {
  std::optional<Platform> platform;  ///< default: the host's
  std::optional<Credentials> credentials;
  const CancelToken* cancel = nullptr;  ///< default: never cancelled
  ProgressFn progress;
  int max_concurrent_downloads = 3;
};

/// What a pull did: the record to store plus download counts.
struct PullResult {
  ImageRecord image;
  int blobs_fetched = 0;  ///< blobs this pull downloaded (not found in the store)
  uint64_t bytes_fetched = 0;
};

class Puller {
 public:
  Puller(HttpClient& http, const RegistryConfig& config, ContentStore& content, RetryPolicy retry = {})
      : http_(http), config_(config), content_(content), retry_(retry) {}
  /// Pulls `ref` into the content store. Throws ImageError on failure; blobs already
  /// committed stay (they are verified and GC removes them if nothing refers to them).
  PullResult pull(const Reference& ref, const PullOptions& opts);

 private:
  HttpClient& http_;
  const RegistryConfig& config_;
  ContentStore& content_;
  RetryPolicy retry_;
};

}  // namespace frakti::image
