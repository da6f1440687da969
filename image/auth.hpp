#pragma once
// Registry authentication: WWW-Authenticate challenge parsing, Basic, and Bearer tokens from
// the challenge's realm (the distribution token protocol), cached per scope.

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "image/http_client.hpp"
#include "image/registry_config.hpp"

namespace frakti::image {

/// One parsed challenge: scheme ("basic"/"bearer", lower case) and its parameters.
struct AuthChallenge {
  std::string scheme;
  std::map<std::string, std::string> params;  ///< names lower case
};

/// Parses a WWW-Authenticate value (may hold several challenges). Malformed parts are
/// skipped, never thrown: the header comes from the network.
std::vector<AuthChallenge> parse_www_authenticate(const std::string& header);

/// Produces Authorization headers for one registry endpoint. Thread-safe.
class Authenticator {
 public:
  Authenticator(HttpClient& http, TlsSettings tls, std::optional<Credentials> creds)
      : http_(http), tls_(std::move(tls)), creds_(std::move(creds)) {}

  /// Records the challenges of a 401 response (from the /v2/ ping or a later request).
  void set_challenges(const std::vector<std::string>& www_authenticate);
  /// The Authorization header for `scope` ("repository:library/busybox:pull"), or "" when
  /// the registry asked for nothing. Fetches a token when needed.
  std::string header(const std::string& scope, const CancelToken& cancel);
  /// Forgets a cached token after the registry rejected it, so the next header() refetches.
  void invalidate(const std::string& scope);
  bool has_challenge() const;

 private:
  std::string fetch_token(const AuthChallenge& c, const std::string& scope, const CancelToken& cancel);

  struct Token {
    std::string value;
    std::chrono::steady_clock::time_point expires;
  };
  HttpClient& http_;
  TlsSettings tls_;
  std::optional<Credentials> creds_;
  mutable std::mutex mu_;
  std::vector<AuthChallenge> challenges_;
  std::map<std::string, Token> tokens_;
};

}  // namespace frakti::image
