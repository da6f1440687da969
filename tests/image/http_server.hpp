#pragma once
// TestHttpServer: a tiny HTTP/1.1 server on 127.0.0.1 for tests (token server, fault-injecting
// proxy). One request per connection, one thread per connection.

#include <atomic>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "common/fd.hpp"

namespace frakti::image::testing {

struct HttpTestRequest {
  std::string method, path, query;
  std::map<std::string, std::string> headers;  ///< lower-case names
};
struct HttpTestResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  /// When set, only this many body bytes are sent (Content-Length still says the full size)
  /// and the connection is closed: a truncated transfer.
  long truncate_at = -1;
};

class TestHttpServer {
 public:
  using Handler = std::function<HttpTestResponse(const HttpTestRequest&)>;
  explicit TestHttpServer(Handler handler);
  ~TestHttpServer();
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  void serve(int fd);
  Handler handler_;
  common::Fd listen_;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  std::vector<std::thread> workers_;
};

}  // namespace frakti::image::testing
