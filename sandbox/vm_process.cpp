#include "sandbox/vm_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace frakti::sandbox {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

GuestAssets GuestAssets::locate() {
  std::error_code ec;
  fs::path bin = fs::read_symlink("/proc/self/exe", ec).parent_path();
  fs::path guest = bin.parent_path() / "guest";
  if (const char* dir = std::getenv("FRAKTI_GUEST_DIR"); dir && *dir) guest = dir;
  GuestAssets a{bin / "frakti-vmm", guest / "vmlinux", guest / "agent-initrd.img"};
  auto need = [&](const fs::path& p, const char* what, const char* how) {
    if (!fs::exists(p, ec)) {
      throw std::runtime_error(fmt::format("{} {} is missing ({})", what, p.string(), how));
    }
  };
  need(a.vmm, "the VMM", "build frakti: tools/setup");
  need(a.kernel, "the guest kernel", "build it: tools/setup, or guest-kernel/build.sh <build>/guest");
  need(a.initrd, "the pod initrd", "build frakti: tools/setup");
  return a;
}

std::string VmExit::describe() const {
  switch (kind) {
    case Kind::poweroff: return "guest powered off";
    case Kind::reboot: return "guest rebooted";
    case Kind::crash: return "guest crashed (triple fault or internal error)";
    case Kind::vmm_error: return fmt::format("frakti-vmm failed (exit {})", code);
    case Kind::killed: return fmt::format("frakti-vmm killed by signal {}", signal);
  }
  return "unknown";
}

namespace {

VmExit decode(int status) {
  if (WIFSIGNALED(status)) return {VmExit::Kind::killed, 0, WTERMSIG(status)};
  int code = WEXITSTATUS(status);
  // frakti-vmm's documented exit statuses (vmm/config usage): 0 poweroff, 2 reboot, 3 crash.
  switch (code) {
    case 0: return {VmExit::Kind::poweroff, 0, 0};
    case 2: return {VmExit::Kind::reboot, 2, 0};
    case 3: return {VmExit::Kind::crash, 3, 0};
    default: return {VmExit::Kind::vmm_error, code, 0};
  }
}

}  // namespace

std::vector<std::string> vmm_command_line(const VmConfig& c) {
  std::vector<std::string> a = {c.assets.vmm.string(),
                                "--kernel", c.assets.kernel.string(),
                                "--initrd", c.assets.initrd.string(),
                                "--cpus", std::to_string(c.cpus),
                                "--memory", std::to_string(c.memory_mib),
                                "--console", c.console_log.empty() ? "none" : "file:" + c.console_log.string()};
  for (const auto& d : c.drives) {
    std::string spec = d.path.empty() ? "empty" : "path=" + d.path.string();
    if (d.read_only) spec += ",ro";
    if (!d.serial.empty()) spec += ",serial=" + d.serial;
    a.insert(a.end(), {"--drive", spec});
  }
  if (!c.vsock_uds.empty()) {
    a.insert(a.end(), {"--vsock", fmt::format("cid={},uds={}", c.vsock_cid, c.vsock_uds.string())});
  }
  if (!c.control_socket.empty()) a.insert(a.end(), {"--control", c.control_socket.string()});
  if (!c.extra_cmdline.empty()) a.insert(a.end(), {"--append", c.extra_cmdline});
  if (!c.log_level.empty()) a.insert(a.end(), {"--log-level", c.log_level});
  return a;
}

VmProcess VmProcess::spawn(const VmConfig& config) {
  std::vector<std::string> args = vmm_command_line(config);
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  std::string log = config.vmm_log.empty() ? "/dev/null" : config.vmm_log.string();
  common::Fd log_fd(::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!log_fd) common::throw_errno("cannot open the VMM log " + log);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) common::throw_errno("cannot fork to start frakti-vmm");
  if (pid == 0) {
    // Only async-signal-safe calls from here to exec.
    if (config.die_with_parent) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
    }
    ::setpgid(0, 0);  // a Ctrl-C at the user's terminal is vmctl's to forward, not the VMM's
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(log_fd.get(), 1);
    ::dup2(log_fd.get(), 2);
    // Nothing the caller inherited (a test runner's pipes, a terminal) belongs to the VMM.
    ::close_range(3, ~0U, 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execv(argv[0], argv.data());
    const char msg[] = "cannot exec frakti-vmm\n";
    (void)!::write(2, msg, sizeof msg - 1);
    ::_exit(127);
  }
  return VmProcess(pid, true);
}

VmProcess VmProcess::adopt(pid_t pid) { return VmProcess(pid, false); }

VmProcess::VmProcess(VmProcess&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)), child_(o.child_), exit_(std::move(o.exit_)) {}

VmProcess& VmProcess::operator=(VmProcess&& o) noexcept {
  if (this != &o) {
    if (pid_ > 0 && child_ && !exit_) kill();
    pid_ = std::exchange(o.pid_, -1);
    child_ = o.child_;
    exit_ = std::move(o.exit_);
  }
  return *this;
}

VmProcess::~VmProcess() {
  if (pid_ > 0 && child_ && !exit_) kill();
}

std::optional<VmExit> VmProcess::poll() {
  if (exit_ || pid_ <= 0) return exit_;
  if (child_) {
    int status = 0;
    pid_t r = common::retry_eintr([&] { return ::waitpid(pid_, &status, WNOHANG); });
    if (r == pid_) exit_ = decode(status);
  } else if (::kill(pid_, 0) != 0 && errno == ESRCH) {
    exit_ = VmExit{VmExit::Kind::killed, 0, 0};
  }
  return exit_;
}

std::optional<VmExit> VmProcess::wait_for(std::chrono::milliseconds limit) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (!poll() && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(10ms);
  return exit_;
}

VmExit VmProcess::kill() {
  if (auto e = poll()) return *e;
  ::kill(pid_, SIGKILL);
  while (!poll()) std::this_thread::sleep_for(5ms);
  return *exit_;
}

pid_t VmProcess::release() {
  child_ = false;
  return std::exchange(pid_, -1);
}

}  // namespace frakti::sandbox
