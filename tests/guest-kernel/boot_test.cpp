// Boots bzImage + the minimal initrd under QEMU TCG and checks the guest reaches /init and
// ends the VM by itself.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/fd.hpp"
#include "common/guest_abi.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using frakti::common::Fd;

namespace {

constexpr auto kReadyTimeout = std::chrono::seconds(60);
constexpr auto kExitTimeout = std::chrono::seconds(30);

struct GuestFiles {
  fs::path kernel;
  fs::path initrd;
};

GuestFiles guest_files() {
  const char* build = std::getenv("FRAKTI_BUILD_DIR");
  REQUIRE(build != nullptr);
  GuestFiles files{fs::path(build) / "guest/bzImage", fs::path(build) / "guest/initrd.img"};
  if (!fs::exists(files.kernel)) {
    FAIL(files.kernel.string() << " is missing: run tools/setup to build the guest kernel "
                               << "(or guest-kernel/build.sh " << build << "/guest)");
  }
  if (!fs::exists(files.initrd)) {
    FAIL(files.initrd.string() << " is missing: run ninja (target guest-initrd)");
  }
  return files;
}

// One QEMU process with the guest's serial console on a pipe; killed if still running at the
// end of the test.
class Qemu {
 public:
  /// `extra` is appended to QEMU's arguments (a machine type, devices).
  Qemu(const GuestFiles& files, const std::string& append,
       const std::vector<std::string>& extra = {}) {
    auto in = frakti::common::make_pipe();
    auto out = frakti::common::make_pipe();
    std::vector<std::string> args = {
        "qemu-system-x86_64", "-accel", "tcg", "-m", "256M",
        // Two sockets: SeaBIOS's MP table lists one CPU per package, and without ACPI the
        // kernel sees only the CPUs in the MP table (frakti-vmm lists every vCPU).
        "-smp", "2,sockets=2,cores=1,threads=1", "-nodefaults", "-no-user-config", "-display",
        "none", "-serial", "stdio", "-monitor", "none", "-no-reboot", "-kernel",
        files.kernel.string(), "-initrd", files.initrd.string(), "-append", append};
    args.insert(args.end(), extra.begin(), extra.end());
    started_ = Clock::now();
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      dup2(in.read.get(), 0);
      dup2(out.write.get(), 1);
      dup2(out.write.get(), 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execvp(argv[0], argv.data());
      dprintf(2, "exec qemu-system-x86_64 failed: install qemu-system-x86\n");
      _exit(127);
    }
    stdin_ = std::move(in.write);
    stdout_ = std::move(out.read);
  }
  ~Qemu() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  /// Reads console output until it contains `text`; returns the time since start, or nothing
  /// when QEMU exits or the timeout passes first.
  std::optional<Clock::duration> wait_for(const std::string& text, Clock::duration timeout) {
    auto deadline = Clock::now() + timeout;
    while (console_.find(text) == std::string::npos) {
      if (!read_some(deadline)) return std::nullopt;
    }
    return Clock::now() - started_;
  }

  /// Waits for QEMU to exit by itself; returns its wait status, or nothing on timeout.
  std::optional<int> wait_exit(Clock::duration timeout) {
    auto deadline = Clock::now() + timeout;
    while (read_some(deadline)) {
    }
    // The console pipe closes when QEMU exits; the exit itself follows shortly after.
    auto reap_deadline = eof_ ? Clock::now() + std::chrono::seconds(5) : Clock::now();
    for (;;) {
      int status = 0;
      pid_t r = waitpid(pid_, &status, WNOHANG);
      REQUIRE(r >= 0);
      if (r == pid_) {
        pid_ = -1;
        return status;
      }
      if (Clock::now() >= reap_deadline) break;
      usleep(20000);
    }
    return std::nullopt;
  }

  void type(const std::string& text) {
    REQUIRE(write(stdin_.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size()));
  }

  /// The last lines of the console, for failure messages.
  std::string tail() const {
    return console_.size() > 3000 ? console_.substr(console_.size() - 3000) : console_;
  }
  const std::string& console() const { return console_; }

 private:
  // Appends whatever arrives before the deadline; false on EOF or timeout.
  bool read_some(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    pollfd pfd{stdout_.get(), POLLIN, 0};
    int n = poll(&pfd, 1, static_cast<int>(left.count()));
    if (n <= 0) return n < 0 && errno == EINTR;
    char buf[4096];
    ssize_t got = read(stdout_.get(), buf, sizeof buf);
    if (got <= 0) {
      eof_ = true;
      return false;
    }
    console_.append(buf, static_cast<size_t>(got));
    return true;
  }

  pid_t pid_ = -1;
  Fd stdin_;
  Fd stdout_;
  std::string console_;
  bool eof_ = false;
  Clock::time_point started_;
};

double seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// Checks the readiness line and returns the guest uptime it reports.
double check_ready_line(const std::string& console) {
  std::string prefix = std::string(frakti::guest_abi::kReadyLine) + " uptime=";
  size_t at = console.find(prefix);
  REQUIRE(at != std::string::npos);
  size_t end = console.find_first_of("\r\n", at);
  std::string value = console.substr(at + prefix.size(), end - at - prefix.size());
  CAPTURE(value);
  size_t used = 0;
  double uptime = std::stod(value, &used);
  CHECK(used == value.size());
  CHECK(uptime > 0.0);
  CHECK(uptime < 60.0);
  return uptime;
}

// Runs a shell command and returns its exit code.
int run_status(const std::string& command) {
  int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

const char* kBaseAppend = "console=ttyS0 quiet reboot=k panic=-1";

}  // namespace

TEST_CASE("guest kernel boots the minimal init, which powers off (frakti.poweroff=1)", "[guest]") {
  GuestFiles files = guest_files();
  Qemu qemu(files, std::string(kBaseAppend) + " frakti.poweroff=1");
  auto ready = qemu.wait_for(frakti::guest_abi::kReadyLine, kReadyTimeout);
  INFO("console tail:\n" << qemu.tail());
  REQUIRE(ready.has_value());
  auto status = qemu.wait_exit(kExitTimeout);
  REQUIRE(status.has_value());
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 0);
  double uptime = check_ready_line(qemu.console());
  std::fprintf(
      stderr,
      "guest boot (QEMU TCG): readiness line %.2f s after QEMU start, guest uptime %.2f s\n",
      seconds(*ready), uptime);
}

TEST_CASE("guest brings up both CPUs; minimal init obeys poweroff typed on the console",
          "[guest]") {
  GuestFiles files = guest_files();
  // Not quiet, so the kernel reports its CPUs.
  Qemu qemu(files, "console=ttyS0 reboot=k panic=-1");
  auto ready = qemu.wait_for(frakti::guest_abi::kReadyLine, kReadyTimeout);
  INFO("console tail:\n" << qemu.tail());
  REQUIRE(ready.has_value());
  CHECK(qemu.console().find("smp: Brought up 1 node, 2 CPUs") != std::string::npos);
  // Without a frakti.* key the init waits for a command and must still be running.
  REQUIRE_FALSE(qemu.wait_exit(std::chrono::milliseconds(500)).has_value());
  qemu.type("bogus\n");
  REQUIRE(qemu.wait_for("frakti-init: commands:", kExitTimeout).has_value());
  qemu.type("poweroff\n");
  auto status = qemu.wait_exit(kExitTimeout);
  REQUIRE(status.has_value());
  CHECK(WIFEXITED(*status));
  CHECK(qemu.console().find("frakti-guest: poweroff") != std::string::npos);
}

TEST_CASE("the built kernel kept every option of guest.config", "[guest]") {
  GuestFiles files = guest_files();
  const char* src = std::getenv("FRAKTI_SOURCE_DIR");
  REQUIRE(src != nullptr);
  fs::path config = files.kernel.parent_path() / "config";
  REQUIRE(fs::exists(config));
  std::string fragment = std::string(src) + "/guest-kernel/guest.config";
  // A guest.config newer than the built kernel fails here until tools/setup rebuilds it.
  CHECK(run_status(std::string(src) + "/guest-kernel/check-config.sh " + fragment + " " +
                   config.string()) == 0);
}

// QEMU's microvm machine announces its virtio-mmio devices on the kernel command line
// (virtio_mmio.device=...), as frakti-vmm does: this checks the kernel's command-line
// virtio-mmio support and virtio-blk end to end.
TEST_CASE("virtio-mmio devices from the command line: virtio-blk is probed (QEMU microvm)",
          "[guest]") {
  GuestFiles files = guest_files();
  char disk[] = "/tmp/frakti-guest-disk.XXXXXX";
  int fd = mkstemp(disk);
  REQUIRE(fd >= 0);
  Fd disk_fd(fd);
  REQUIRE(ftruncate(fd, 4 << 20) == 0);
  struct Unlink {
    const char* path;
    ~Unlink() { unlink(path); }
  } unlink_disk{disk};
  Qemu qemu(
      files, "console=ttyS0 reboot=k panic=-1",
      {"-M", "microvm,acpi=off", "-drive", std::string("id=d0,if=none,format=raw,file=") + disk,
       "-device", "virtio-blk-device,drive=d0"});
  auto ready = qemu.wait_for(frakti::guest_abi::kReadyLine, kReadyTimeout);
  INFO("console tail:\n" << qemu.tail());
  REQUIRE(ready.has_value());
  CHECK(qemu.console().find("virtio_mmio.device=") != std::string::npos);
  CHECK(qemu.console().find("[vda] 8192 512-byte logical blocks") != std::string::npos);
}
