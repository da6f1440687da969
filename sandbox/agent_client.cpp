#include "sandbox/agent_client.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <thread>

#include <fmt/format.h>

namespace frakti::sandbox {

namespace protocol = agent::protocol;
using namespace std::chrono_literals;
using common::Fd;

namespace {

// One attempt; an empty Fd when the VMM's socket or the guest's listener is not up yet.
Fd try_connect(const std::filesystem::path& uds, uint32_t port, std::chrono::milliseconds answer_limit) {
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return fd;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string path = uds.string();
  if (path.size() >= sizeof addr.sun_path) {
    throw AgentError(fmt::format("vsock socket path {} is too long for a Unix socket", path), v1::Error::CODE_INVALID_ARGUMENT);
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return Fd();
  std::string line = fmt::format("CONNECT {}\n", port);
  if (::send(fd.get(), line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size())) return Fd();
  // One byte at a time: nothing after the newline belongs to us.
  std::string answer;
  auto end = std::chrono::steady_clock::now() + answer_limit;
  while (answer.size() < 64 && (answer.empty() || answer.back() != '\n')) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
    if (left.count() <= 0) return Fd();
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return Fd();
    char c;
    if (::read(fd.get(), &c, 1) != 1) return Fd();
    answer += c;
  }
  return answer.rfind("OK ", 0) == 0 ? std::move(fd) : Fd();
}

}  // namespace

Fd connect_hybrid_vsock(const std::filesystem::path& uds, uint32_t port, std::chrono::steady_clock::time_point deadline,
                        const std::function<bool()>& keep_trying) {
  auto delay = 5ms;
  for (;;) {
    if (Fd fd = try_connect(uds, port, 5s)) return fd;
    if (keep_trying && !keep_trying()) break;
    if (std::chrono::steady_clock::now() + delay > deadline) {
      throw AgentError(fmt::format("no agent answered on vsock port {} through {} in time", port, uds.string()),
                       v1::Error::CODE_UNAVAILABLE);
    }
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(100));
  }
  throw AgentError(fmt::format("the VM went away before its agent answered on vsock port {}", port), v1::Error::CODE_UNAVAILABLE);
}

AgentClient::AgentClient(boost::asio::io_context& io, Fd fd, std::string name) : io_(io) {
  protocol::Session::Options o;
  o.name = std::move(name);
  session_ = protocol::Session::create(protocol::adopt_socket(io_, std::move(fd)), protocol::Session::Role::client, o);
  session_->set_event_handler([this](const v1::Event& e) {
    if (on_event_) on_event_(e);
  });
  session_->set_close_handler([this](std::error_code, const std::string& reason) {
    if (on_close_) on_close_(reason);
  });
  std::optional<std::error_code> result;
  session_->start_client(v1::Hello{}, [&](std::error_code ec, const v1::HelloReply& reply) {
    hello_ = reply;
    result = ec;
  });
  run_until([&] { return result.has_value(); }, 60s);
  if (!result || *result) {
    std::string why = session_->close_reason().empty() ? (result ? result->message() : "no answer") : session_->close_reason();
    throw AgentError("agent handshake failed: " + why, v1::Error::CODE_UNAVAILABLE);
  }
}

AgentClient::~AgentClient() {
  // Handlers capture `this`; the session may outlive us in pending completions.
  session_->set_event_handler({});
  session_->set_close_handler({});
  session_->close();
}

bool AgentClient::run_until(const std::function<bool()>& pred, std::chrono::milliseconds limit) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    auto now = std::chrono::steady_clock::now();
    if (now >= end) return false;
    io_.restart();
    io_.run_one_for(std::min<std::chrono::steady_clock::duration>(end - now, 50ms));
  }
  return true;
}

void AgentClient::call_async(const v1::Request& request, std::chrono::milliseconds timeout, std::string what,
                             std::function<void(std::exception_ptr, v1::Response)> done) {
  session_->call(request, timeout, [this, what = std::move(what), done = std::move(done)](std::error_code ec, v1::Response r) {
    if (ec) {
      std::string why = ec == protocol::ProtocolErrc::timeout ? "the agent did not answer in time" : ec.message();
      if (!session_->close_reason().empty()) why += " (" + session_->close_reason() + ")";
      done(std::make_exception_ptr(AgentError(what + ": " + why, v1::Error::CODE_UNAVAILABLE)), {});
      return;
    }
    if (r.kind_case() == v1::Response::kError) {
      done(std::make_exception_ptr(AgentError(what + ": " + r.error().message(), r.error().code())), {});
      return;
    }
    done(nullptr, std::move(r));
  });
}

v1::Response AgentClient::call(const v1::Request& request, std::chrono::milliseconds timeout, const std::string& what) {
  std::optional<std::pair<std::exception_ptr, v1::Response>> got;
  call_async(request, timeout, what, [&](std::exception_ptr e, v1::Response r) { got.emplace(e, std::move(r)); });
  // The session's own timer bounds the call; the margin only guards against a stuck loop.
  run_until([&] { return got.has_value(); }, timeout + 5s);
  if (!got) throw AgentError(what + ": no answer", v1::Error::CODE_UNAVAILABLE);
  if (got->first) std::rethrow_exception(got->first);
  return std::move(got->second);
}

}  // namespace frakti::sandbox
