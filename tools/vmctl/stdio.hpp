#pragma once
// The user's stdio <-> a container process's agent streams, for run and exec.
//
// Output: the process's stdout/stderr streams go to fds 1 and 2 (foreground) and/or to the
// container's CRI log (run). Writes block the loop when the reader is slow, which holds back
// the agent through the stream window: that is the backpressure.
// Input (-i): fd 0 is read without changing the flags of the descriptor the shell shares
// with us (a fresh open of /proc/self/fd/0 where possible), EOF becomes the stream's FIN.

#include <termios.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <utility>

#include <boost/asio/posix/stream_descriptor.hpp>

#include "sandbox/agent_client.hpp"
#include "sandbox/cri_log.hpp"

namespace frakti::vmctl {

/// Puts a terminal in raw mode for its lifetime (-t): keys go to the container's PTY as typed.
class RawTerminal {
 public:
  explicit RawTerminal(int fd);
  ~RawTerminal();
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;

 private:
  int fd_;
  termios saved_{};
  bool active_ = false;
};

/// rows, cols of the terminal on fd (0, 0 when it is not one).
std::pair<uint32_t, uint32_t> terminal_size(int fd);

class StdioBridge {
 public:
  struct Options {
    bool input = false;     ///< forward fd 0 (-i)
    bool terminal = false;  ///< one PTY stream instead of stdout + stderr
    bool to_host = true;    ///< write output to fds 1 and 2
    sandbox::CriLogWriter* log = nullptr;
  };
  StdioBridge(sandbox::AgentClient& client, Options options);
  ~StdioBridge();

  /// Opens the receiving streams and names every stream in process; call before sending
  /// the request that starts the process.
  void attach(agent::v1::Process& process);
  /// Starts moving data (after the process was created).
  void start();
  /// Every output stream has ended.
  bool output_done() const;

 private:
  void read_output(uint32_t id, int host_fd, sandbox::LogStream stream);
  void read_input();
  void send_input(std::string data);

  sandbox::AgentClient& client_;
  Options options_;
  uint32_t in_ = 0, out_ = 0, err_ = 0;
  int open_outputs_ = 0;
  common::Fd input_fd_;
  std::optional<int> restore_flags_;  // when fd 0 itself had to be made non-blocking
  std::unique_ptr<boost::asio::posix::stream_descriptor> input_;
  bool input_sync_ = false;  // regular files and /dev/null cannot be polled: plain reads
  std::string buffer_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace frakti::vmctl
