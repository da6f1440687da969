#pragma once
// Process: one process the agent started (a container's init or an exec), from spawn to
// exit: its pid, its stdio pump, its exit status and the WaitProcess calls waiting for it.

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/process/io_pump.hpp"
#include "agent/protocol/session.hpp"

namespace frakti::agent::process {

struct ExitStatus {
  int exit_code = 0;
  int signal = 0;  // non-zero when a signal killed it
  int64_t at_unix_ns = 0;
};

/// Decodes a waitpid() status.
ExitStatus decode_wait_status(int status);

class Process {
 public:
  Process(std::string container_id, std::string exec_id, pid_t pid, std::vector<std::string> args)
      : container_id_(std::move(container_id)),
        exec_id_(std::move(exec_id)),
        pid_(pid),
        args_(std::move(args)) {}

  const std::string& container_id() const { return container_id_; }
  /// "" for the container's init.
  const std::string& exec_id() const { return exec_id_; }
  pid_t pid() const { return pid_; }
  const std::vector<std::string>& args() const { return args_; }
  bool running() const { return !exit_; }
  const std::optional<ExitStatus>& exit() const { return exit_; }

  void set_io(std::shared_ptr<IoPump> io) { io_ = std::move(io); }
  IoPump* io() const { return io_.get(); }

  /// Records the exit and answers every pending WaitProcess.
  void mark_exited(const ExitStatus& status);
  /// Answers at once when the process already exited, otherwise when it does.
  void add_waiter(protocol::Responder responder);
  /// The ProcessExited event / WaitProcess status (only valid after the exit).
  protocol::v1::ProcessExited exited_message() const;
  /// Signals the process (ESRCH after the exit is not an error).
  void signal(int sig) const;

 private:
  std::string container_id_, exec_id_;
  pid_t pid_;
  std::vector<std::string> args_;
  std::optional<ExitStatus> exit_;
  std::shared_ptr<IoPump> io_;
  std::vector<protocol::Responder> waiters_;
};

}  // namespace frakti::agent::process
