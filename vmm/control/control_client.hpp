#pragma once
// ControlClient: a small synchronous client of frakti-vmm's control socket, for vmctl and the
// frakti daemon. One call at a time on one connection; every call has a deadline.
//
//   ControlClient vm("/run/frakti/pod-x/control.sock");
//   vm.set_drive(1, "/var/lib/frakti/images/abc.erofs", true, "rootfs-c1");
//
// Failures: ControlError for an error reply (the server's code and message); std::system_error
// for the transport (no such socket, refused, timed out, connection closed) and for a reply
// that does not follow the protocol (EPROTO).

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/fd.hpp"
#include "vmm/control/control_error.hpp"
#include "vmm/control/control_handler.hpp"
#include "vmm/control/protocol.hpp"

namespace frakti::vmm::control {

class ControlClient {
 public:
  struct Options {
    /// How long connecting may take (a full listen backlog, or waiting for the socket).
    std::chrono::milliseconds connect_timeout{5000};
    /// Keep retrying while the socket does not exist yet or refuses (a VMM still starting),
    /// until connect_timeout. Off: fail at once, which suits a CLI given a wrong path.
    bool wait_for_socket = false;
    /// Deadline of each call except stop (whose deadline is its own timeout plus this).
    std::chrono::milliseconds call_timeout{10000};
    /// A longer reply line is a protocol error.
    size_t max_reply_bytes = 4 << 20;
  };

  /// Connects to the control socket at path; throws std::system_error saying what to check.
  ControlClient(std::string path, Options options);
  explicit ControlClient(std::string path) : ControlClient(std::move(path), Options{}) {}

  /// Sends one request and returns its `result` object. timeout: nullopt = call_timeout.
  Json call(std::string_view method, const Json& params = Json::object(),
            std::optional<std::chrono::milliseconds> timeout = std::nullopt);

  VmStatus status();
  /// The guest's boot time; nullopt until its boot timer fired.
  std::optional<std::chrono::microseconds> boot_time();
  void pause();
  void resume();
  /// Stops the VM. nullopt when the VMM exited (closing the socket) before it could reply:
  /// the VM is gone, but how it stopped is unknown.
  std::optional<StopResult> stop(bool graceful, std::chrono::milliseconds timeout);
  /// Swaps the media of a reserved drive slot; path nullopt ejects.
  void set_drive(uint32_t slot, const std::optional<std::string>& path, bool read_only,
                 const std::string& serial);

  const std::string& path() const { return path_; }

 private:
  using Deadline = std::chrono::steady_clock::time_point;
  /// nullopt only when eof_ok and the server closed the connection before replying.
  std::optional<Json> call_impl(std::string_view method, const Json& params, Deadline deadline,
                                bool eof_ok);
  /// False when the server has already closed the connection (EPIPE): its reason may still
  /// be waiting to be read.
  bool write_line(const std::string& line, Deadline deadline);
  /// The next complete line; nullopt at end of stream.
  std::optional<std::string> read_line(Deadline deadline);

  std::string path_;
  Options options_;
  common::Fd fd_;
  uint64_t next_id_ = 1;
  std::string in_;
};

/// Human-readable lines for a status (vmctl prints these).
std::string format_status(const VmStatus& status);

}  // namespace frakti::vmm::control
