#include "agent/init/pid1.hpp"

#include <fcntl.h>
#include <net/if.h>
#include <sys/io.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "agent/sys/files.hpp"
#include "common/error.hpp"
#include "common/fd.hpp"
#include "common/guest_abi.hpp"
#include "common/log.hpp"

namespace frakti::agent::init {

namespace {

void mount_pseudo(const char* source, const char* target, const char* type, unsigned long flags,
                  const char* data) {
  if (::mkdir(target, 0755) < 0 && errno != EEXIST)
    common::throw_errno(fmt::format("mkdir {}", target));
  if (::mount(source, target, type, flags, data) < 0 && errno != EBUSY) {
    common::throw_errno(fmt::format("mount {} on {}", type, target));
  }
}

void say(const std::string& text) {
  ssize_t ignored = ::write(STDOUT_FILENO, text.data(), text.size());
  (void)ignored;
}

}  // namespace

void move_off_initramfs(const char* marker) {
  const char* root = "/.frakti-root";
  if (::mkdir(root, 0755) < 0 && errno != EEXIST)
    common::throw_errno(fmt::format("mkdir {}", root));
  common::check(::mount("tmpfs", root, "tmpfs", MS_NOSUID, "mode=0755"), "mount tmpfs on {}", root);
  std::string self = sys::read_file("/init", 256 << 20);
  std::string copy = std::string(root) + "/init";
  {
    common::Fd out(::open(copy.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755));
    if (!out) common::throw_errno(fmt::format("create {}", copy));
    common::write_all(out.get(), self.data(), self.size(), copy.c_str());
  }
  ::unlink("/init");  // the initramfs copy would only hold memory
  common::check(::chdir(root), "chdir {}", root);
  common::check(::mount(".", "/", nullptr, MS_MOVE, nullptr), "move {} over /", root);
  common::check(::chroot("."), "chroot into the new root");
  common::check(::chdir("/"), "chdir /");
  for (const char* d : {"/dev", "/proc", "/sys", "/tmp", "/run"}) ::mkdir(d, 0755);
  char* argv[] = {const_cast<char*>("/init"), const_cast<char*>(marker), nullptr};
  ::execv("/init", argv);
  common::throw_errno("re-exec /init on the new root");
}

void mount_base_filesystems() {
  // /dev first: the console lives there; without it the kernel gave init no fds at all.
  mount_pseudo("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
  common::Fd console(::open("/dev/console", O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (console) {
    for (int fd = 0; fd <= 2; ++fd) ::dup2(console.get(), fd);
  }
  mount_pseudo("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
  mount_pseudo("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
  mount_pseudo("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
               "newinstance,ptmxmode=0666,mode=0620");
  // /dev/ptmx of devtmpfs belongs to the initial devpts instance; point it at ours.
  ::unlink("/dev/ptmx");
  if (::symlink("pts/ptmx", "/dev/ptmx") < 0 && errno != EEXIST)
    common::throw_errno("symlink /dev/ptmx");
  mount_pseudo("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  mount_pseudo("cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
  mount_pseudo("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  mount_pseudo("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
}

void bring_up_loopback() {
  common::Fd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) common::throw_errno("socket for configuring lo");
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  common::check(::ioctl(sock.get(), SIOCGIFFLAGS, &ifr), "get the flags of lo");
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
  common::check(::ioctl(sock.get(), SIOCSIFFLAGS, &ifr), "bring lo up");
}

void announce_ready(const std::string& detail) {
  std::string uptime = sys::try_read_file("/proc/uptime").value_or("?");
  uptime.resize(std::min(uptime.find(' '), uptime.size()));
  say(fmt::format("{} uptime={} {}\n", guest_abi::kReadyLine, uptime, detail));
  // The VMM timestamps this write (like Firecracker's boot timer); harmless without one.
  if (::ioperm(guest_abi::kBootTimerPort, 1, 1) == 0)
    ::outb(guest_abi::kBootTimerMagic, guest_abi::kBootTimerPort);
}

void route_ctrl_alt_del_to_init() {
  if (::reboot(RB_DISABLE_CAD) < 0)
    common::log::warn("agent", "reboot(RB_DISABLE_CAD): {}: Ctrl-Alt-Del will reset the VM",
                      std::strerror(errno));
}

void end_vm(bool reboot) {
  ::sync();
  if (reboot) {
    say("frakti-agent: reboot\n");
    ::reboot(RB_AUTOBOOT);
  } else {
    // Without ACPI reboot(RB_POWER_OFF) only halts the CPUs; frakti-vmm ends the VM on this
    // port write. A kernel without CONFIG_X86_IOPL_IOPERM refuses ioperm: then reset, which
    // ends the VM too (frakti-vmm reports a reboot).
    if (::ioperm(guest_abi::kPowerOffPort, 1, 1) == 0) {
      say("frakti-agent: power off\n");
      ::outb(guest_abi::kPowerOffMagic, guest_abi::kPowerOffPort);
      ::reboot(RB_POWER_OFF);
    } else {
      say(fmt::format("frakti-agent: power off (reset: ioperm on the power-off port failed: {})\n",
                      std::strerror(errno)));
      ::reboot(RB_AUTOBOOT);
    }
  }
  // PID 1 must never exit (the kernel would panic).
  for (;;) ::pause();
}

}  // namespace frakti::agent::init
