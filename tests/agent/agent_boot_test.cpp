// Boots the real guest kernel (<build>/guest/bzImage, from tools/setup) with the pod initrd
// (<build>/guest/agent-initrd.img) under QEMU TCG and checks frakti-agent comes up as PID 1:
// it leaves the initramfs, mounts the base file systems, brings up lo, listens on vsock and
// prints the readiness line. Labelled "guest": needs the kernel and qemu-system-x86_64, no
// KVM, no root. (No vsock transport exists under plain QEMU here, so requests are not sent.)

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <string>

#include "common/guest_abi.hpp"

namespace fs = std::filesystem;

TEST_CASE("agent boot: frakti-agent is PID 1 of the pod initrd and listens on vsock",
          "[agent][guest]") {
  const char* build = std::getenv("FRAKTI_BUILD_DIR");
  REQUIRE(build != nullptr);
  fs::path kernel = fs::path(build) / "guest/bzImage";
  fs::path initrd = fs::path(build) / "guest/agent-initrd.img";
  INFO("needs " << kernel << " (tools/setup or guest-kernel/build.sh) and " << initrd);
  REQUIRE(fs::exists(kernel));
  REQUIRE(fs::exists(initrd));
  int out[2];
  REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::dup2(out[1], 2);
    ::execlp("qemu-system-x86_64", "qemu-system-x86_64", "-accel", "tcg", "-m", "256M", "-smp", "1",
             "-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio", "-kernel",
             kernel.c_str(), "-initrd", initrd.c_str(), "-append",
             "console=ttyS0 quiet reboot=k panic=-1", nullptr);
    ::_exit(127);
  }
  ::close(out[1]);
  std::string console;
  std::string want = std::string(frakti::guest_abi::kReadyLine);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  size_t line_end = std::string::npos;
  while (std::chrono::steady_clock::now() < deadline) {
    size_t at = console.find(want);
    if (at != std::string::npos && (line_end = console.find('\n', at)) != std::string::npos) break;
    pollfd p{out[0], POLLIN, 0};
    if (::poll(&p, 1, 500) <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(out[0], buf, sizeof buf);
    if (n <= 0) break;
    console.append(buf, static_cast<size_t>(n));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  ::close(out[0]);
  INFO(console.substr(console.size() > 3000 ? console.size() - 3000 : 0));
  size_t at = console.find(want);
  REQUIRE(at != std::string::npos);
  REQUIRE(line_end != std::string::npos);
  std::string line = console.substr(at, line_end - at);
  CHECK_THAT(line, Catch::Contains("agent=vsock:1024"));
  CHECK(console.find("fatal") == std::string::npos);
}
