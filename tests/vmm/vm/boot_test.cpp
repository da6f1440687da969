// End to end: frakti-vmm boots the real guest kernel and initrd. The guest's init prints the
// ready line, then powers off or reboots as its command line asks; frakti-vmm's exit status
// must say which. Slow under nested TCG (seconds per boot), so the console is kept quiet.
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <regex>
#include <thread>

#include "common/fd.hpp"
#include "common/guest_abi.hpp"
#include "tests/vmm/vm/run_vmm.hpp"
#include "vmm/control/control_client.hpp"

namespace {

using frakti::test::VmmRun;

std::string build_dir() {
  const char* d = std::getenv("FRAKTI_BUILD_DIR");
  return d ? d : ".";
}

// Boots the guest kernel and initrd from the build directory with extra args.
VmmRun run_vmm(const std::vector<std::string>& extra,
               std::chrono::seconds timeout = std::chrono::seconds(240)) {
  std::vector<std::string> args = {"--kernel", build_dir() + "/guest/vmlinux", "--initrd",
                                   build_dir() + "/guest/initrd.img"};
  args.insert(args.end(), extra.begin(), extra.end());
  return frakti::test::run_vmm(args, timeout);
}

void report(const char* what, const VmmRun& r) {
  std::smatch m;
  std::regex boot("guest boot time: ([0-9.]+) ms");
  std::string bt = std::regex_search(r.log, m, boot) ? m[1].str() : "?";
  std::printf("%s: exit %d, wall %.0f ms, guest boot time %s ms\n", what, r.status, r.wall_ms,
              bt.c_str());
}

struct GuestCheck {
  GuestCheck() {
    struct stat st;
    for (const char* f : {"/guest/vmlinux", "/guest/initrd.img"}) {
      if (::stat((build_dir() + f).c_str(), &st) != 0) {
        std::printf("SKIP: %s%s missing; build it with guest-kernel/build.sh %s/guest and the "
                    "initrd target\n", build_dir().c_str(), f, build_dir().c_str());
        std::fflush(stdout);
        std::_Exit(77);
      }
    }
  }
};

}  // namespace

TEST_CASE("the guest boots to its ready line and powers off: exit 0", "[kvm][boot]") {
  GuestCheck check;
  auto r = run_vmm({"--append", "frakti.poweroff=1"});
  report("poweroff, 1 vCPU", r);
  INFO("console:\n" << r.console << "\nlog:\n" << r.log);
  REQUIRE(r.console.find(frakti::guest_abi::kReadyLine) != std::string::npos);
  REQUIRE(r.log.find("guest boot time:") != std::string::npos);
  REQUIRE(r.status == 0);
}

TEST_CASE("a guest reboot ends frakti-vmm with exit 2", "[kvm][boot]") {
  GuestCheck check;
  auto r = run_vmm({"--append", "frakti.reboot=1"});
  report("reboot, 1 vCPU", r);
  INFO("console:\n" << r.console << "\nlog:\n" << r.log);
  REQUIRE(r.console.find(frakti::guest_abi::kReadyLine) != std::string::npos);
  REQUIRE(r.status == 2);
}

TEST_CASE("a graceful stop asks the guest (Ctrl-Alt-Del) and it powers off: exit 0",
          "[kvm][boot]") {
  GuestCheck check;
  char dir_tmpl[] = "/tmp/frakti-boot-stop-XXXXXX";
  REQUIRE(::mkdtemp(dir_tmpl));
  const std::string control = std::string(dir_tmpl) + "/control.sock";
  std::optional<frakti::vmm::control::StopResult> stopped;
  std::string stop_error;
  // Once the guest's init has signalled the boot timer (it takes Ctrl-Alt-Del over before
  // that), stop the VM gracefully with a generous timeout: a forced stop means it was not asked.
  std::thread stopper([&] {
    try {
      frakti::vmm::control::ControlClient::Options o;
      o.wait_for_socket = true;
      o.connect_timeout = std::chrono::seconds(60);
      frakti::vmm::control::ControlClient client(control, o);
      for (auto end = std::chrono::steady_clock::now() + std::chrono::seconds(200);
           !client.boot_time() && std::chrono::steady_clock::now() < end;)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      stopped = client.stop(true, std::chrono::seconds(60));
      if (!stopped) stop_error = "the VMM exited before answering the stop";
    } catch (const std::exception& e) {
      stop_error = e.what();
    }
  });
  auto r = run_vmm({"--control", control});
  stopper.join();
  report("graceful stop, 1 vCPU", r);
  INFO("stop error: " << stop_error << "\nconsole:\n" << r.console << "\nlog:\n" << r.log);
  CHECK(r.log.find("asked the guest to shut down (Ctrl-Alt-Del)") != std::string::npos);
  CHECK(r.console.find("frakti-init: Ctrl-Alt-Del: powering off") != std::string::npos);
  // The reply can lose the race with the VMM's exit; when it arrives it says "not forced".
  CHECK((!stopped || !stopped->forced));
  CHECK((stop_error.empty() || stop_error.find("exited before") != std::string::npos));
  CHECK(r.status == 0);
  std::system((std::string("rm -rf ") + dir_tmpl).c_str());
}

TEST_CASE("a unix:PATH console carries the guest's console both ways", "[kvm][boot]") {
  GuestCheck check;
  char dir_tmpl[] = "/tmp/frakti-boot-console-XXXXXX";
  REQUIRE(::mkdtemp(dir_tmpl));
  const std::string sock = std::string(dir_tmpl) + "/console.sock";
  std::string seen;
  bool answered = false;
  // Attach, ask frakti-init for help once a second until it answers (input typed before its
  // tty is open is lost), then tell it to power off. Typed at a person's pace: a flood of
  // hundreds of lines (the echo used to pace the writes) made the box's nested KVM lose the
  // guest (a triple fault or a stalled console) in 2 of 75 runs; see docs/testing.md.
  ::signal(SIGPIPE, SIG_IGN);  // a VMM that exits closes the socket under our writes
  std::thread user([&] {
    frakti::common::Fd fd;
    for (auto end = std::chrono::steady_clock::now() + std::chrono::seconds(60); !fd;) {
      fd = frakti::common::Fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      sock.copy(addr.sun_path, sizeof addr.sun_path - 1);
      if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        fd = frakti::common::Fd();
        if (std::chrono::steady_clock::now() > end) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
    timeval tv{1, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    auto next_help = std::chrono::steady_clock::now();
    for (auto end = std::chrono::steady_clock::now() + std::chrono::seconds(200);
         std::chrono::steady_clock::now() < end;) {
      if (!answered && std::chrono::steady_clock::now() >= next_help) {
        if (::write(fd.get(), "help\n", 5) != 5) return;
        next_help = std::chrono::steady_clock::now() + std::chrono::seconds(1);
      }
      char buf[512];
      ssize_t n = ::read(fd.get(), buf, sizeof buf);
      if (n == 0) return;  // the VMM exited
      if (n > 0) seen.append(buf, static_cast<size_t>(n));
      if (!answered && seen.find("frakti-init: commands:") != std::string::npos) {
        answered = true;
        if (::write(fd.get(), "poweroff\n", 9) != 9) return;
      }
    }
  });
  auto r = run_vmm({"--console", "unix:" + sock});
  user.join();
  report("unix console, 1 vCPU", r);
  INFO("client saw:\n" << seen << "\nlog:\n" << r.log);
  CHECK(answered);
  CHECK(r.status == 0);  // powered off: the typed "poweroff" reached init
  CHECK(::access(sock.c_str(), F_OK) != 0);  // removed at exit
  std::system((std::string("rm -rf ") + dir_tmpl).c_str());
}

TEST_CASE("SMP guests bring up every vCPU", "[kvm][boot]") {
  GuestCheck check;
  for (int cpus : {2, 4}) {
    // Without `quiet`, so the kernel's SMP summary reaches the console.
    auto r = run_vmm({"--cpus", std::to_string(cpus), "--cmdline",
                      "console=ttyS0 reboot=k panic=1 pci=off nomodules tsc=reliable "
                      "no_timer_check frakti.reboot=1"});
    report(cpus == 2 ? "reboot, 2 vCPUs, verbose" : "reboot, 4 vCPUs, verbose", r);
    INFO("console:\n" << r.console << "\nlog:\n" << r.log);
    REQUIRE(r.console.find("smp: Brought up 1 node, " + std::to_string(cpus) + " CPUs") !=
            std::string::npos);
    REQUIRE(r.console.find(frakti::guest_abi::kReadyLine) != std::string::npos);
    REQUIRE(r.status == 2);
  }
}

TEST_CASE("a bzImage or missing kernel is a clean VMM error: exit 1", "[kvm][boot]") {
  GuestCheck check;
  char tmpl[] = "/tmp/frakti-bad-kernel-XXXXXX";
  int fd = mkstemp(tmpl);
  REQUIRE(fd >= 0);
  REQUIRE(write(fd, "not a kernel at all", 19) == 19);
  close(fd);
  auto r = run_vmm({"--kernel", tmpl}, std::chrono::seconds(60));
  ::unlink(tmpl);
  INFO("log:\n" << r.log);
  REQUIRE(r.status == 1);
  REQUIRE(r.log.find("not an ELF file") != std::string::npos);
}
