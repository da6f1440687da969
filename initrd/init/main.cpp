// frakti-init: PID 1 of the default (minimal) guest initrd.
//
// It proves a guest kernel boots and reaches user space: it mounts the basic file systems,
// prints the readiness line on the console, pokes the VMM's boot-timer port, then powers off
// or reboots when the kernel command line asks for it, or obeys "poweroff" / "reboot" typed on
// the console, or powers off when the VMM types Ctrl-Alt-Del (frakti-vmm's graceful stop; init
// turns the kernel's CAD reboot into SIGINT). As PID 1 it also reaps every orphan. It must never exit (the kernel would
// panic), so every failure ends in a reset of the VM instead.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/io.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <exception>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "common/guest_abi.hpp"
#include "initrd/init/options.hpp"

namespace frakti::initrd {
namespace {

using common::Fd;

// Writes a message to stdout (the console once set up); best effort, nothing to report to.
void say(std::string_view text) {
  while (!text.empty()) {
    ssize_t n = write(STDOUT_FILENO, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    text.remove_prefix(static_cast<size_t>(n));
  }
}

// Mounts a pseudo file system; one that is already mounted (EBUSY) is fine.
void mount_pseudo(const char* source, const char* target, const char* type, unsigned long flags,
                  const char* data) {
  if (mkdir(target, 0755) < 0 && errno != EEXIST)
    common::throw_errno(fmt::format("mkdir {}", target));
  if (mount(source, target, type, flags, data) < 0 && errno != EBUSY) {
    common::throw_errno(fmt::format("mount {} on {}", type, target));
  }
}

// Makes /dev/console stdin, stdout and stderr. Without a /dev/console node in the initrd the
// kernel starts init with no open descriptors, so this is done after devtmpfs is mounted.
Fd open_console() {
  Fd console(
      common::check(open("/dev/console", O_RDWR | O_NOCTTY | O_CLOEXEC), "open /dev/console"));
  for (int fd = 0; fd <= 2; ++fd) {
    if (fd != console.get()) common::check(dup2(console.get(), fd), "dup2 console to {}", fd);
  }
  return console;
}

// Reads a whole small file such as /proc/uptime; empty on failure.
std::string read_small_file(const char* path) {
  Fd fd(open(path, O_RDONLY | O_CLOEXEC));
  if (!fd) return {};
  std::string text(4096, '\0');
  ssize_t n = common::retry_eintr([&] { return read(fd.get(), text.data(), text.size()); });
  text.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return text;
}

// Tells the VMM the guest is ready. Fails harmlessly when the port is not permitted or the
// VMM (QEMU) has no device behind it.
void poke_boot_timer() {
  if (ioperm(guest_abi::kBootTimerPort, 1, 1) == 0) {
    outb(guest_abi::kBootTimerMagic, guest_abi::kBootTimerPort);
  }
}

// Ends the VM. Without ACPI the kernel cannot power off: reboot(RB_POWER_OFF) would only halt
// the CPUs and leave the VMM running. So a power-off first tells frakti-vmm through its
// power-off port (the VMM ends with "powered off" at once), and otherwise resets: a micro-VM's
// VMM (QEMU -no-reboot, or frakti-vmm reporting a reboot) ends the VM when the guest resets.
[[noreturn]] void power(ConsoleCommand what) {
  sync();
  if (what == ConsoleCommand::poweroff && ioperm(guest_abi::kPowerOffPort, 1, 1) == 0)
    outb(guest_abi::kPowerOffMagic, guest_abi::kPowerOffPort);
  bool can_power_off = access("/sys/firmware/acpi", F_OK) == 0;
  if (what == ConsoleCommand::poweroff && can_power_off) {
    say("frakti-guest: poweroff\n");
    reboot(RB_POWER_OFF);
  } else {
    say(what == ConsoleCommand::poweroff ? "frakti-guest: poweroff (reset)\n"
                                         : "frakti-guest: reboot\n");
    reboot(RB_AUTOBOOT);
  }
  // Only reached without CAP_SYS_BOOT; PID 1 must not exit, so wait for the end.
  for (;;) pause();
}

// Collects every exited child (PID 1 inherits all orphans).
void reap_children() {
  while (waitpid(-1, nullptr, WNOHANG) > 0) {
  }
}

// SIGCHLD and SIGINT as a signalfd. Ctrl-Alt-Del then reaches PID 1 as SIGINT instead of
// rebooting at once. Done before the ready line, so a graceful stop right after it is seen.
Fd take_signals() {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigaddset(&mask, SIGINT);
  common::check(sigprocmask(SIG_BLOCK, &mask, nullptr), "sigprocmask SIGCHLD SIGINT");
  Fd signals(common::check(signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK), "signalfd"));
  if (reboot(RB_DISABLE_CAD) < 0) say("frakti-init: cannot take over Ctrl-Alt-Del\n");
  return signals;
}

// Serves the console until a command or Ctrl-Alt-Del ends the VM; reaps children meanwhile.
[[noreturn]] void serve(const Fd& console, const Fd& signals) {
  reap_children();  // children that exited before the signalfd existed

  LineReader reader;
  bool console_open = true;
  for (;;) {
    pollfd fds[2] = {{signals.get(), POLLIN, 0}, {console.get(), POLLIN, 0}};
    int n = poll(fds, console_open ? 2 : 1, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      common::throw_errno("poll");
    }
    if (fds[0].revents) {
      signalfd_siginfo info;
      bool ctrl_alt_del = false;
      while (read(signals.get(), &info, sizeof info) == sizeof info) {
        if (info.ssi_signo == SIGINT) ctrl_alt_del = true;
      }
      reap_children();
      if (ctrl_alt_del) {
        say("frakti-init: Ctrl-Alt-Del: powering off\n");
        power(ConsoleCommand::poweroff);
      }
    }
    if (console_open && fds[1].revents) {
      char buf[256];
      ssize_t got = read(console.get(), buf, sizeof buf);
      if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (got <= 0) {
        console_open = false;  // hung up: keep reaping without a console
        continue;
      }
      for (const std::string& line : reader.feed(std::string_view(buf, static_cast<size_t>(got)))) {
        ConsoleCommand command = parse_console_command(line);
        if (command == ConsoleCommand::poweroff || command == ConsoleCommand::reboot)
          power(command);
        if (command == ConsoleCommand::unknown) say("frakti-init: commands: poweroff, reboot\n");
      }
    }
  }
}

[[noreturn]] void run() {
  // The order matters: /dev must exist before the console can be opened, and /proc before
  // the uptime and command line can be read.
  mount_pseudo("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
  Fd console = open_console();
  mount_pseudo("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
  mount_pseudo("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);

  Fd signals = take_signals();
  std::string uptime = read_small_file("/proc/uptime");
  uptime.resize(std::min(uptime.find(' '), uptime.size()));
  say(fmt::format("{} uptime={}\n", guest_abi::kReadyLine, uptime.empty() ? "?" : uptime));
  poke_boot_timer();

  BootOptions options = parse_boot_options(read_small_file("/proc/cmdline"));
  if (options.poweroff) power(ConsoleCommand::poweroff);
  if (options.reboot) power(ConsoleCommand::reboot);
  serve(console, signals);
}

}  // namespace
}  // namespace frakti::initrd

int main() {
  try {
    frakti::initrd::run();
  } catch (const std::exception& e) {
    frakti::initrd::say(fmt::format("frakti-init: fatal: {}; resetting\n", e.what()));
  }
  frakti::initrd::power(frakti::initrd::ConsoleCommand::reboot);
}
