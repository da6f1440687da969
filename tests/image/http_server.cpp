#include "tests/image/http_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

#include "common/error.hpp"

namespace frakti::image::testing {

TestHttpServer::TestHttpServer(Handler handler) : handler_(std::move(handler)) {
  listen_ = common::Fd(common::check(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), "socket"));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  common::check(::bind(listen_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), "bind");
  common::check(::listen(listen_.get(), 64), "listen");
  socklen_t len = sizeof a;
  ::getsockname(listen_.get(), reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  acceptor_ = std::thread([this] {
    while (!stop_) {
      pollfd p{listen_.get(), POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int c = ::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      workers_.emplace_back([this, c] { serve(c); });
    }
  });
}

TestHttpServer::~TestHttpServer() {
  stop_ = true;
  acceptor_.join();
  for (auto& w : workers_) w.join();
}

void TestHttpServer::serve(int raw) {
  common::Fd fd(raw);
  std::string in;
  char buf[4096];
  while (in.find("\r\n\r\n") == std::string::npos) {
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, 5000) <= 0) return;
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n <= 0) return;
    in.append(buf, static_cast<size_t>(n));
  }
  HttpTestRequest req;
  std::string head = in.substr(0, in.find("\r\n\r\n"));
  size_t eol = head.find("\r\n");
  std::string line = head.substr(0, eol);
  auto sp1 = line.find(' '), sp2 = line.rfind(' ');
  req.method = line.substr(0, sp1);
  std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  auto q = target.find('?');
  req.path = target.substr(0, q);
  if (q != std::string::npos) req.query = target.substr(q + 1);
  size_t pos = eol == std::string::npos ? head.size() : eol + 2;
  while (pos < head.size()) {
    size_t e = head.find("\r\n", pos);
    if (e == std::string::npos) e = head.size();
    std::string h = head.substr(pos, e - pos);
    auto c = h.find(':');
    if (c != std::string::npos) {
      std::string name = h.substr(0, c);
      std::transform(name.begin(), name.end(), name.begin(), ::tolower);
      std::string v = h.substr(c + 1);
      v.erase(0, v.find_first_not_of(' '));
      req.headers[name] = v;
    }
    pos = e + 2;
  }
  HttpTestResponse resp;
  try {
    resp = handler_(req);
  } catch (const std::exception& e) {
    resp = HttpTestResponse{500, {}, e.what()};
  }
  std::string out = fmt::format("HTTP/1.1 {} X\r\nConnection: close\r\nContent-Length: {}\r\n", resp.status, resp.body.size());
  for (auto& [k, v] : resp.headers) out += k + ": " + v + "\r\n";
  out += "\r\n";
  if (req.method != "HEAD") {
    out += resp.truncate_at >= 0 ? resp.body.substr(0, static_cast<size_t>(resp.truncate_at)) : resp.body;
  }
  try {
    common::write_all(fd.get(), out.data(), out.size(), "test http response");
  } catch (const std::exception&) {
    // The client went away; nothing to do in a test server.
  }
}

}  // namespace frakti::image::testing
