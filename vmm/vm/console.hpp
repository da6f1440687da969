#pragma once
// Console: the host side of the guest's serial port. Output goes to stdout, a file, an
// attached Unix-socket client or nowhere; input comes from stdin (a terminal or pipe) or from
// the attached client, through the event loop.
//
// unix:PATH works like `virsh console` or QEMU's `-serial unix:PATH,server`: frakti-vmm
// listens on PATH (0600, same-user peers only) and one client at a time is attached: it gets
// the guest's output from then on and its bytes are the guest's input. A second client is told
// the console is busy and closed. Output with no client attached, or that a slow client
// cannot take at once, is dropped (counted in the log): the guest never waits for a reader.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include "common/fd.hpp"
#include "vmm/config/vm_config.hpp"
#include "vmm/control/unix_socket.hpp"

namespace frakti::vmm::devices {
class Serial;
}

namespace frakti::vmm::vm {

class Console {
 public:
  /// Opens the output named by config (a file is created or truncated; a socket is bound and
  /// listened on). Throws std::system_error naming the path on failure.
  explicit Console(const config::ConsoleConfig& config);
  /// Removes the console socket (if it is still ours).
  ~Console();
  Console(const Console&) = delete;
  Console& operator=(const Console&) = delete;

  /// Writes guest output; failures are counted and logged rate-limited, never thrown (this
  /// runs on a vCPU thread inside the UART).
  void write(std::span<const uint8_t> bytes);
  /// Starts feeding input to serial on loop: stdin for stdio consoles (when it is a terminal
  /// or pipe), clients of the socket for unix consoles.
  void start_input(boost::asio::io_context& loop, devices::Serial& serial);

 private:
  using Stream = boost::asio::posix::stream_descriptor;
  /// Reads `from` into serial until EOF or error, then calls done (loop thread).
  void read_more(Stream& from, devices::Serial& serial, std::function<void()> done);
  void accept_next(boost::asio::io_context& loop, devices::Serial& serial);
  void attach(boost::asio::io_context& loop, devices::Serial& serial, common::Fd client);
  void detach();

  config::ConsoleConfig::Kind kind_;
  int out_fd_ = -1;
  common::Fd owned_out_;
  std::unique_ptr<Stream> in_;
  uint8_t buf_[256];
  std::atomic<uint64_t> write_errors_{0};

  // unix:PATH consoles.
  std::string socket_path_;
  uid_t owner_uid_ = 0;  // the only uid whose clients may attach
  std::optional<control::UnixListener> listener_;
  std::unique_ptr<Stream> accept_waiter_;  // loop thread only
  std::mutex client_mu_;
  common::Fd client_;  // guarded by client_mu_: where output goes
  uint64_t dropped_bytes_ = 0;  // guarded by client_mu_
};

}  // namespace frakti::vmm::vm
