// The container init (CreateContainerRequest.init), PID 1 of the container's PID namespace.
//
// The kernel ignores signals a PID namespace's init gets from inside its namespace unless it
// handles them, and never lets SIGKILL through: a program run as PID 1 survives
// `kill -9 $$`, and a shell as PID 1 ignores Ctrl-C and SIGTERM. Like tini and docker
// --init, this init keeps PID 1 for itself and runs the process as its child: every signal
// it gets is passed on, orphans are reaped, and it exits with the process's status.
//
// It runs in the forked copy of the agent (no exec): the agent binary is static and the
// code below uses only system calls, so nothing of the agent's state is touched.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "agent/container/child.hpp"
#include "common/error.hpp"

namespace frakti::agent::container {

namespace {

// With a terminal the kernel itself sends these to the foreground process group, which
// already holds the process: forwarding them would deliver them twice.
bool from_the_terminal(int sig) {
  return sig == SIGINT || sig == SIGQUIT || sig == SIGTSTP || sig == SIGWINCH || sig == SIGTTIN || sig == SIGTTOU;
}

}  // namespace

pid_t fork_behind_init(bool terminal) {
  // Blocked before the fork so no signal falls between the fork and sigwaitinfo; the child
  // restores its mask in exec_process.
  sigset_t all;
  sigfillset(&all);
  ::sigprocmask(SIG_BLOCK, &all, nullptr);
  pid_t pid = ::fork();
  common::check(pid, "fork the container process behind its init");
  return pid;
}

void run_container_init(pid_t child, bool terminal) {
  // The init needs no file at all. Without exec nothing closes the agent's CLOEXEC copies
  // for it, and the process's stdin must see end of file when the host ends it, not wait
  // for a pipe end this init still holds.
  ::close_range(0, ~0U, 0);
  sigset_t all;
  sigfillset(&all);
  for (;;) {
    siginfo_t info{};
    int sig = ::sigwaitinfo(&all, &info);
    if (sig < 0) continue;  // EINTR
    if (sig != SIGCHLD) {
      if (!(terminal && from_the_terminal(sig))) ::kill(child, sig);
      continue;
    }
    int status = 0;
    pid_t pid;
    while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
      if (pid != child) continue;  // an orphan that ended: reaped, nothing more
      // Whatever the process left running dies with the namespace when we exit.
      ::_exit(WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status));
    }
  }
}

}  // namespace frakti::agent::container
