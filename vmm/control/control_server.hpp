#pragma once
// ControlServer: frakti-vmm's control socket (docs/vmm-control.md). Listens on an owner-only
// Unix socket, reads newline-delimited JSON requests from any number of clients, validates them
// (protocol.hpp) and calls the VM through ControlHandler.
//
// Threads: every socket operation runs on the io_context the VMM provides (its event loop).
// status and boot_time call the handler inline there (quick). pause, resume, stop and
// set_drive run on the server's own command thread, one at a time in arrival order, and their
// replies are posted back to the loop; so a stop that waits 30 s for the guest blocks neither
// the loop nor other clients' status calls (it does delay later commands). A connection may
// have several requests in flight; replies carry the request id and may come out of order.
//
// Life cycle: construct on the loop thread (or before the loop runs); destroy on the loop thread
// or after it stopped, before the io_context and the handler. The destructor closes every
// connection, drops queued commands, waits for a running command to return, and removes the
// socket file.

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "vmm/control/control_handler.hpp"
#include "vmm/control/protocol.hpp"

namespace frakti::vmm::control {

class ControlServer {
 public:
  struct Options {
    /// A longer request line gets an error reply and its connection is closed.
    size_t max_line_bytes = kDefaultMaxLineBytes;
    /// Connections beyond this get an error reply and are closed.
    size_t max_connections = 32;
    /// Commands (pause/resume/stop/set_drive) waiting or running; more get failed_precondition.
    size_t max_queued_commands = 16;
    /// A client that lets this many reply bytes pile up unread is disconnected.
    size_t max_pending_reply_bytes = 1 << 20;
    /// The uid allowed to connect (SO_PEERCRED); nullopt = this process's effective uid.
    std::optional<uid_t> owner_uid;
    /// Whether uid 0 may connect as well (frakti runs as root).
    bool allow_root = true;
  };

  /// Starts listening on socket_path (see unix_socket.hpp for stale-socket handling). Throws
  /// std::system_error naming the path when the socket cannot be created.
  ControlServer(boost::asio::io_context& io, std::string socket_path, ControlHandler& handler,
                Options options);
  ControlServer(boost::asio::io_context& io, std::string socket_path, ControlHandler& handler)
      : ControlServer(io, std::move(socket_path), handler, Options{}) {}
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  const std::string& path() const;
  /// Open connections. Loop thread only.
  size_t connection_count() const;
  /// Requests answered with an error because they were malformed or refused (any thread).
  uint64_t bad_request_count() const;

 private:
  struct Core;
  struct Connection;
  std::shared_ptr<Core> core_;
};

}  // namespace frakti::vmm::control
