#include "agent/sys/process.hpp"

#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include "common/error.hpp"

namespace frakti::agent::sys {

CloneResult clone_process(uint64_t namespace_flags, int cgroup_fd) {
  int pidfd = -1;
  clone_args args{};
  args.flags = namespace_flags | CLONE_PIDFD;
  args.pidfd = reinterpret_cast<uint64_t>(&pidfd);
  args.exit_signal = SIGCHLD;
  if (cgroup_fd >= 0) {
    args.flags |= CLONE_INTO_CGROUP;
    args.cgroup = static_cast<uint64_t>(cgroup_fd);
  }
  long rc = ::syscall(SYS_clone3, &args, sizeof args);
  if (rc < 0) {
    common::throw_errno(fmt::format("clone3 (namespace flags {:#x}{})", namespace_flags,
                                    cgroup_fd >= 0 ? ", into the container's cgroup" : ""));
  }
  CloneResult result;
  result.pid = static_cast<pid_t>(rc);
  if (rc > 0) {
    result.pidfd = common::Fd(pidfd);
    // clone3 pidfds are always O_CLOEXEC.
  }
  return result;
}

void set_namespaces(int fd, int flags, const char* what) {
  if (::setns(fd, flags) < 0)
    common::throw_errno(fmt::format("setns {} (flags {:#x})", what, flags));
}

Pty open_pty(unsigned rows, unsigned cols) {
  Pty pty;
  pty.master = common::Fd(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!pty.master) common::throw_errno("open /dev/ptmx");
  common::check(::unlockpt(pty.master.get()), "unlockpt");
  // TIOCGPTPEER opens the slave through the master, without a path lookup in /dev/pts.
  int slave = ::ioctl(pty.master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) common::throw_errno("open the pty slave (TIOCGPTPEER)");
  pty.slave = common::Fd(slave);
  if (rows != 0 && cols != 0) set_window_size(pty.master.get(), rows, cols);
  return pty;
}

void set_window_size(int master, unsigned rows, unsigned cols) {
  winsize ws{};
  ws.ws_row = static_cast<unsigned short>(rows);
  ws.ws_col = static_cast<unsigned short>(cols);
  common::check(::ioctl(master, TIOCSWINSZ, &ws), "set the terminal size to {}x{}", rows, cols);
}

}  // namespace frakti::agent::sys
