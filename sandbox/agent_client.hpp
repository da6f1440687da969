#pragma once
// AgentClient: the host's end of one agent-protocol connection (docs/agent-protocol.md),
// reached through the VMM's hybrid vsock socket. A thin layer over protocol::Session that
// adds the connect handshake, blocking calls for straight-line code (vmctl, tests) and
// errors that name the call and what to do.
//
// Threading: like the Session, an AgentClient belongs to the one thread that runs its
// io_context. The blocking calls run that io_context until their answer arrives, so other
// handlers (stdio pumps, signals) keep running meanwhile; never call them from a handler.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

#include <boost/asio/io_context.hpp>

#include "agent/protocol/session.hpp"
#include "common/fd.hpp"

namespace frakti::sandbox {

namespace v1 = ::frakti::agent::v1;

/// A failed agent call: transport (connection lost, timeout) or the agent's own error.
class AgentError : public std::runtime_error {
 public:
  AgentError(std::string message, v1::Error::Code code) : std::runtime_error(std::move(message)), code_(code) {}
  /// CODE_UNAVAILABLE for transport failures and timeouts.
  v1::Error::Code code() const { return code_; }

 private:
  v1::Error::Code code_;
};

/// Firecracker's hybrid vsock, host → guest: connect to uds, send "CONNECT <port>\n", read
/// "OK <hostport>\n". Retries until deadline while the guest is not listening yet;
/// keep_trying (when set) is asked between attempts and ends the wait early (the VM died).
/// Throws AgentError(CODE_UNAVAILABLE) naming the socket when no connection came up.
common::Fd connect_hybrid_vsock(const std::filesystem::path& uds, uint32_t port,
                                std::chrono::steady_clock::time_point deadline,
                                const std::function<bool()>& keep_trying = {});

class AgentClient {
 public:
  /// Runs the version handshake on a connected socket (blocking, bounded by the session's
  /// handshake timeout).
  AgentClient(boost::asio::io_context& io, common::Fd fd, std::string name);
  ~AgentClient();
  AgentClient(const AgentClient&) = delete;
  AgentClient& operator=(const AgentClient&) = delete;

  /// Sends request and runs the io_context until the answer; returns a successful response,
  /// throws AgentError otherwise ("<what>: <agent's message>").
  v1::Response call(const v1::Request& request, std::chrono::milliseconds timeout, const std::string& what);
  /// The same without blocking: done gets the response or an AgentError as exception_ptr.
  void call_async(const v1::Request& request, std::chrono::milliseconds timeout, std::string what,
                  std::function<void(std::exception_ptr, v1::Response)> done);

  /// Runs the io_context until pred() is true or limit passes; false on timeout.
  bool run_until(const std::function<bool()>& pred, std::chrono::milliseconds limit);

  agent::protocol::Session& session() { return *session_; }
  const v1::HelloReply& hello() const { return hello_; }
  boost::asio::io_context& io() { return io_; }
  /// Events (process exits, OOM) go here.
  void on_event(std::function<void(const v1::Event&)> handler) { on_event_ = std::move(handler); }
  /// Told once when the connection ends (after a failure, or the VM going away).
  void on_close(std::function<void(const std::string& reason)> handler) { on_close_ = std::move(handler); }
  bool is_open() const { return session_->is_open(); }

 private:
  boost::asio::io_context& io_;
  std::shared_ptr<agent::protocol::Session> session_;
  v1::HelloReply hello_;
  std::function<void(const v1::Event&)> on_event_;
  std::function<void(const std::string&)> on_close_;
};

/// A request for the common case where the caller only fills the body.
template <typename Fill>
v1::Request make_request(Fill&& fill) {
  v1::Request r;
  fill(r);
  return r;
}

}  // namespace frakti::sandbox
