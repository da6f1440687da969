#pragma once
// RegistryClient: the distribution API v2 for one repository. Knows endpoints (mirrors first,
// then the registry itself), scheme policy (HTTPS; plain HTTP only for insecure or loopback
// registries), authentication, and retries with backoff. It moves bytes; verifying and
// storing them is the content store's job.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "image/auth.hpp"
#include "image/http_client.hpp"
#include "image/manifest.hpp"
#include "image/reference.hpp"
#include "image/registry_config.hpp"

namespace frakti::image {

/// How often and how patiently to retry 5xx answers and network errors.
struct RetryPolicy {
  int attempts = 4;  ///< total tries per request
  std::chrono::milliseconds initial_backoff{200};
  std::chrono::milliseconds max_backoff{5000};
};

/// A manifest or index as the registry sent it, verified against its digest.
struct FetchedManifest {
  std::string body;
  std::string content_type;
  Digest digest;
  ManifestKind kind = ManifestKind::unknown;
};

class RegistryClient {
 public:
  /// `creds` (from the CRI AuthConfig) overrides the config's credentials for the registry.
  RegistryClient(HttpClient& http, const RegistryConfig& config, const Reference& ref,
                 std::optional<Credentials> creds, RetryPolicy retry = {});
  ~RegistryClient();

  /// Fetches the manifest for a tag or digest. A digest reference is checked against the
  /// body; schema1 is refused with ImageError(unsupported).
  FetchedManifest get_manifest(const std::string& tag_or_digest, const CancelToken& cancel);
  /// Streams a blob into `sink`. `restart` is called before every attempt (so a retried
  /// download starts from an empty file). Size and digest are verified by the caller.
  void get_blob(const Descriptor& desc, const std::function<void()>& restart,
                const std::function<void(const char*, size_t)>& sink, const CancelToken& cancel);

 private:
  struct Endpoint;
  HttpResponse request(Endpoint& ep, const std::string& path, const std::vector<std::string>& headers,
                       const std::function<void()>& restart,
                       const std::function<void(const char*, size_t)>& sink, const std::string& what,
                       const CancelToken& cancel);
  void ping(Endpoint& ep, const CancelToken& cancel);
  template <typename F>
  auto on_any_endpoint(const std::string& what, const CancelToken& cancel, F&& f);

  HttpClient& http_;
  Reference ref_;
  RetryPolicy retry_;
  std::string scope_;
  std::vector<std::unique_ptr<Endpoint>> endpoints_;
};

}  // namespace frakti::image
