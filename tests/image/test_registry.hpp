#pragma once
// Test fixtures around real tools: Debian's docker-registry on loopback (started and stopped
// here), images built offline with umoci and pushed with skopeo, and a token server.

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "tests/image/http_server.hpp"

namespace frakti::image::testing {

/// Runs a shell command; throws with its output when it fails. Returns stdout.
std::string sh(const std::string& cmd);

/// A fresh temporary directory, removed (recursively) on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& hint = "frakti-image-test");
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

struct TokenAuth {
  std::string realm, service, issuer, cert_file;
};

/// One docker-registry process. Several may share a storage directory (an open one for
/// pushing, and an authenticated one in front of the same data).
class TestRegistry {
 public:
  TestRegistry(const std::filesystem::path& storage, const std::filesystem::path& workdir,
               const std::string& htpasswd_file = {}, const std::optional<TokenAuth>& token = {},
               const std::string& tls_cert = {}, const std::string& tls_key = {});
  ~TestRegistry();
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  /// How many requests whose request line contains `needle` the registry logged.
  int count_requests(const std::string& needle) const;

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::filesystem::path log_;
};

/// A token server for Bearer auth: signs RS256 JWTs (x5c header) the registry trusts.
class TokenServer {
 public:
  /// Requires Basic user:pass on token requests when user is not empty.
  TokenServer(const std::filesystem::path& workdir, std::string user, std::string pass);
  TokenAuth auth() const;
  int issued() const { return issued_; }

 private:
  std::string sign(const std::string& scope, const std::string& service);
  std::filesystem::path key_, cert_;
  std::string user_, pass_;
  std::atomic<int> issued_{0};
  std::unique_ptr<TestHttpServer> http_;
};

/// Shared images for the registry tests, built once per test binary:
///   <host>/test/oci:1 (OCI, 2 layers incl. a whiteout), <host>/test/v2s2:1 (schema2),
///   <host>/test/multi:1 (OCI index: amd64 + arm64)
struct TestImages {
  TestImages() = default;
  TestImages(TestImages&&) = default;
  std::filesystem::path storage;  ///< registry storage dir
  std::filesystem::path layout;   ///< OCI layout with tags "base", "two", "arm"
  std::unique_ptr<TestRegistry> open;  ///< the unauthenticated registry holding them
  static TestImages& get();
  std::filesystem::path work;
};

/// Path of a file in the source tree (FRAKTI_SOURCE_DIR is set by ctest).
std::filesystem::path source_path(const std::string& rel);
/// Path of a built binary.
std::filesystem::path build_path(const std::string& rel);

}  // namespace frakti::image::testing
