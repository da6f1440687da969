#pragma once
// Process-creation system calls the container code needs: clone3 with namespaces, a pidfd
// and a target cgroup; setns; pseudo-terminals.

#include <sys/types.h>

#include <cstdint>

#include "common/fd.hpp"

namespace frakti::agent::sys {

/// A new child process (fork-like: returns 0 in the child).
struct CloneResult {
  pid_t pid = -1;
  common::Fd pidfd;  // parent only
};

/// clone3(2) with CLONE_PIDFD, namespace flags (CLONE_NEW*) and, when cgroup_fd >= 0,
/// CLONE_INTO_CGROUP so the child never runs outside its cgroup. The child gets SIGCHLD
/// semantics like fork(). Throws std::system_error in the parent on failure.
CloneResult clone_process(uint64_t namespace_flags, int cgroup_fd);

/// setns(2) on fd (a pidfd or a /proc/PID/ns file) for the given CLONE_NEW* flags.
void set_namespaces(int fd, int flags, const char* what);

/// A pseudo-terminal pair: the master stays with the agent, the slave becomes the
/// process's controlling terminal.
struct Pty {
  common::Fd master;
  common::Fd slave;
};
/// Opens a new pty from /dev/ptmx with the given size (0 rows/cols = leave the default).
Pty open_pty(unsigned rows, unsigned cols);
/// TIOCSWINSZ on a pty master.
void set_window_size(int master, unsigned rows, unsigned cols);

}  // namespace frakti::agent::sys
