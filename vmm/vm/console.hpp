#pragma once
// Console: the host side of the guest's serial port. Output goes to stdout, a file or
// nowhere; input comes from stdin (when it is a terminal, pipe or socket) through the event
// loop.

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include "common/fd.hpp"
#include "vmm/config/vm_config.hpp"

namespace frakti::vmm::devices {
class Serial;
}

namespace frakti::vmm::vm {

class Console {
 public:
  /// Opens the output named by config (a file is created or truncated). Throws on failure.
  explicit Console(const config::ConsoleConfig& config);

  /// Writes guest output; failures are counted and logged rate-limited, never thrown (this
  /// runs on a vCPU thread inside the UART).
  void write(std::span<const uint8_t> bytes);
  /// Starts feeding stdin to serial on loop (stdio consoles with a pollable stdin only).
  void start_input(boost::asio::io_context& loop, devices::Serial& serial);

 private:
  void read_more(devices::Serial& serial);

  int out_fd_ = -1;
  common::Fd owned_out_;
  bool input_ = false;
  std::unique_ptr<boost::asio::posix::stream_descriptor> in_;
  uint8_t buf_[256];
  std::atomic<uint64_t> write_errors_{0};
};

}  // namespace frakti::vmm::vm
