#pragma once
// HttpClient: the one place that talks to libcurl. Requests share a connection, DNS and TLS
// session cache (a curl share handle), so the many small requests of a pull reuse sockets.
// Cancellation and deadlines are checked from curl's progress callback and abort transfers.

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace frakti::image {

/// Cancellation flag plus an optional deadline, shared by every request of one operation.
class CancelToken {
 public:
  using Clock = std::chrono::steady_clock;
  void cancel() noexcept { cancelled_.store(true); }
  void set_deadline(Clock::time_point t) noexcept { deadline_ = t; }
  /// True when cancelled or past the deadline.
  bool stopped() const noexcept {
    return cancelled_.load() || (deadline_ != Clock::time_point{} && Clock::now() >= deadline_);
  }
  /// Throws ImageError(cancelled) when stopped(); `what` names the operation.
  void check(const std::string& what) const;
  /// Sleeps up to d, waking early when cancelled; throws if stopped.
  void sleep_for(std::chrono::milliseconds d, const std::string& what) const;

 private:
  std::atomic<bool> cancelled_{false};
  Clock::time_point deadline_{};
};

/// TLS and scheme policy for one endpoint.
struct TlsSettings {
  bool verify = true;        ///< false only for registries configured as insecure
  std::string ca_file;       ///< extra CA bundle for this registry (in addition to system CAs)
  bool allow_http_redirect = false;  ///< whether redirects may leave TLS
};

struct HttpRequest {
  std::string method = "GET";  ///< GET or HEAD
  std::string url;
  std::vector<std::string> headers;  ///< "Name: value"
  TlsSettings tls;
  /// Receives the body of 2xx responses; when empty the body is collected into
  /// HttpResponse::body (up to body_limit bytes).
  std::function<void(const char*, size_t)> sink;
  size_t body_limit = 4u << 20;
  std::chrono::seconds connect_timeout{15};
  /// Abort when fewer than 1 byte/s arrive for this long (a stalled server).
  std::chrono::seconds stall_timeout{60};
};

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  ///< lower-case names; last value wins
  std::vector<std::string> www_authenticate;   ///< every WWW-Authenticate header of the final response
  std::string body;
  std::string effective_url;
  /// A header value or "" when absent (name in lower case).
  std::string header(const std::string& name) const;
};

/// HTTP client over libcurl; thread-safe (each request uses its own easy handle).
class HttpClient {
 public:
  HttpClient();
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  /// Performs one request, following redirects. Throws ImageError(network) on transport
  /// failures (connection refused, TLS, truncated body), ImageError(cancelled) when the token
  /// stops it. HTTP error statuses are returned, not thrown.
  HttpResponse perform(const HttpRequest& req, const CancelToken& cancel);

 private:
  struct Shared;
  std::unique_ptr<Shared> shared_;
};

/// Percent-encodes a query parameter value.
std::string url_escape(const std::string& s);
/// Standard base64 encode / decode (decode returns false on malformed input).
std::string base64_encode(const std::string& s);
bool base64_decode(const std::string& in, std::string& out);

}  // namespace frakti::image
