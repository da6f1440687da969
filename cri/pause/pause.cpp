// frakti-pause: the infra process of a runc pod. It holds the pod's namespaces (network, IPC,
// UTS and, for pod-wide PID sharing, PID) while the pod's containers come and go, so it must do
// nothing, forever, cheaply. As PID 1 of a shared PID namespace it also reaps the orphans
// other containers leave. SIGTERM/SIGINT end it with status 0 (a requested stop); every other
// signal is blocked, so a stray signal from inside the pod cannot take the namespaces away.
//
// Static and free of the C++ runtime on purpose: it runs from a rootfs holding only itself.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char**) {
  if (argc != 1) {
    static const char usage[] =
        "usage: frakti-pause (no arguments; run by frakti as a pod's infra container)\n";
    (void)!::write(2, usage, sizeof usage - 1);
    return 2;
  }
  sigset_t blocked;
  sigfillset(&blocked);
  sigdelset(&blocked, SIGTERM);
  sigdelset(&blocked, SIGINT);
  sigdelset(&blocked, SIGCHLD);
  sigprocmask(SIG_SETMASK, &blocked, nullptr);

  // As PID 1 of a namespace the kernel ignores signals without a handler, so SIGTERM needs one.
  struct sigaction stop {};
  stop.sa_handler = [](int) { ::_exit(0); };
  sigaction(SIGTERM, &stop, nullptr);
  sigaction(SIGINT, &stop, nullptr);
  struct sigaction reap {};
  reap.sa_handler = [](int) {
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
  };
  reap.sa_flags = SA_NOCLDSTOP | SA_RESTART;
  sigaction(SIGCHLD, &reap, nullptr);

  for (;;) ::pause();
}
