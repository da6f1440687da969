// devices_kvm_test: the host half of the device test. Boots the real guest kernel with the
// devtest initrd (devtest_guest.cpp) under frakti-vmm and drives the other end of every device:
// drive files, media swap through the control socket, vsock echo in both directions, a TAP
// with ping both ways. Needs /dev/kvm and root (TAP); tools/check runs it inside tools/kvmbox.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <future>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/fd.hpp"
#include "vmm/control/control_client.hpp"

extern char** environ;

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using frakti::common::Fd;

std::string build_dir() {
  const char* d = std::getenv("FRAKTI_BUILD_DIR");
  return d ? d : FRAKTI_DEFAULT_BUILD_DIR;
}

uint8_t pattern_byte(size_t i) { return static_cast<uint8_t>((i * 131 + (i >> 9)) & 0xff); }

std::string make_temp_dir() {
  char tmpl[] = "/tmp/frakti-devtest-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  return tmpl;
}

void write_image(const std::string& path, const std::string& head, size_t size) {
  std::string data(size, '\0');
  data.replace(0, head.size(), head);
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  REQUIRE(fd);
  REQUIRE(::write(fd.get(), data.data(), data.size()) == static_cast<ssize_t>(data.size()));
}

bool write_all(int fd, const uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

Fd unix_listen(const std::string& path) {
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(fd.get(), 4) == 0);
  return fd;
}

Fd unix_connect(const std::string& path) {
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return Fd();
  return fd;
}

/// Line reader over a pipe or socket that keeps partial lines across timeouts.
struct LineReader {
  explicit LineReader(int f) : fd(f) {}
  int fd;
  std::string buf;
  bool eof = false;
  /// The next complete line (without '\n' or '\r'), or nullopt on timeout or end of stream.
  std::optional<std::string> next(std::chrono::milliseconds wait) {
    auto deadline = Clock::now() + wait;
    for (;;) {
      if (auto nl = buf.find('\n'); nl != std::string::npos) {
        std::string line = buf.substr(0, nl);
        buf.erase(0, nl + 1);
        while (!line.empty() && line.back() == '\r') line.pop_back();
        return line;
      }
      if (eof || Clock::now() >= deadline) return std::nullopt;
      pollfd p{fd, POLLIN, 0};
      int left = static_cast<int>(
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
      if (::poll(&p, 1, std::max(left, 1)) != 1) continue;
      char chunk[4096];
      ssize_t n = ::read(fd, chunk, sizeof chunk);
      if (n <= 0) eof = true;
      else buf.append(chunk, static_cast<size_t>(n));
    }
  }
};

std::string read_line_timeout(int fd, std::chrono::milliseconds wait) {
  // Single-use readers: only for the CONNECT reply, which is one short line.
  std::string line;
  auto deadline = Clock::now() + wait;
  char c;
  while (Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    int left = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
    if (::poll(&p, 1, std::max(left, 1)) != 1) continue;
    if (::read(fd, &c, 1) != 1) return "";
    if (c == '\n') return line;
    line += c;
  }
  return "";
}

/// Host → guest vsock echo: CONNECT through the hybrid socket, send `bytes` of the pattern,
/// read the echo back. Returns "" on success, or what went wrong.
std::string vsock_in(const std::string& uds, unsigned port, size_t bytes) {
  Fd fd = unix_connect(uds);
  if (!fd) return "connect " + uds + ": " + std::strerror(errno);
  std::string req = "CONNECT " + std::to_string(port) + "\n";
  if (!write_all(fd.get(), reinterpret_cast<const uint8_t*>(req.data()), req.size()))
    return "write CONNECT failed";
  std::string ok = read_line_timeout(fd.get(), 30s);
  if (ok.rfind("OK ", 0) != 0) return "CONNECT answered '" + ok + "'";
  std::vector<uint8_t> out(bytes), in(bytes);
  for (size_t i = 0; i < bytes; i++) out[i] = pattern_byte(i);
  // Write on another thread: the guest echoes while it reads, so one thread would deadlock.
  auto writer = std::async(std::launch::async, [&] { return write_all(fd.get(), out.data(), bytes); });
  size_t got = 0;
  auto deadline = Clock::now() + 120s;
  while (got < bytes && Clock::now() < deadline) {
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, 1000) != 1) continue;
    ssize_t r = ::read(fd.get(), in.data() + got, bytes - got);
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  ::shutdown(fd.get(), SHUT_RDWR);
  bool wrote = writer.get();
  if (!wrote) return "writing the pattern failed";
  if (got != bytes) return "echo stopped after " + std::to_string(got) + " bytes";
  if (in != out) return "echo differs from what was sent";
  return "";
}

/// frakti-vmm with its console on a pipe read line by line.
struct Vmm {
  pid_t pid = -1;
  Fd console;
  std::string log_path;

  Vmm(const std::vector<std::string>& args, const std::string& dir) {
    std::vector<std::string> all = {build_dir() + "/bin/frakti-vmm", "--console", "stdout"};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    int p[2];
    REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    log_path = dir + "/vmm.log";
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(p[1]);
    console = Fd(p[0]);
    REQUIRE(rc == 0);
  }
  ~Vmm() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
  /// Exit status after at most `wait`; -1 when it had to be killed or died of a signal.
  int wait_exit(std::chrono::seconds wait) {
    auto deadline = Clock::now() + wait;
    int ws = 0;
    while (::waitpid(pid, &ws, WNOHANG) != pid) {
      if (Clock::now() > deadline) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &ws, 0);
        pid = -1;
        return -1;
      }
      std::this_thread::sleep_for(20ms);
    }
    pid = -1;
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
  }
  std::string log() const {
    std::string s;
    Fd fd(::open(log_path.c_str(), O_RDONLY | O_CLOEXEC));
    char buf[4096];
    for (ssize_t n; fd && (n = ::read(fd.get(), buf, sizeof buf)) > 0;) s.append(buf, n);
    return s;
  }
};

void require_kvm() {
  if (::access("/dev/kvm", R_OK | W_OK) != 0)
    FAIL("no usable /dev/kvm: this test boots a real guest; run it through tools/check "
         "(which routes kvm tests into tools/kvmbox) or on a host with KVM");
  for (const char* f : {"/bin/frakti-vmm", "/guest/vmlinux", "/guest/devtest-initrd.img"})
    if (::access((build_dir() + f).c_str(), R_OK) != 0)
      FAIL("missing " << build_dir() << f
                      << " (build frakti-vmm and devtest-initrd; guest-kernel/build.sh <build>/guest)");
}

bool sh(const std::string& cmd) { return std::system(cmd.c_str()) == 0; }

/// A TAP in this network namespace with the host address; removed again at the end.
struct Tap {
  std::string name;
  explicit Tap(std::string n) : name(std::move(n)) {
    sh("ip link del " + name + " 2>/dev/null");
    REQUIRE(sh("ip tuntap add dev " + name + " mode tap"));
    REQUIRE(sh("ip addr add 10.0.2.1/24 dev " + name));
    REQUIRE(sh("ip link set " + name + " up"));
  }
  ~Tap() { sh("ip link del " + name + " 2>/dev/null"); }
};

}  // namespace

TEST_CASE("every device works end to end in a real guest", "[kvm][root]") {
  require_kvm();
  const std::string dir = make_temp_dir();
  const std::string rw = dir + "/rw.img", ro = dir + "/ro.img", media = dir + "/media.img";
  const std::string uds = dir + "/vsock", ctl = dir + "/control";
  write_image(rw, "host-data", 1 << 20);
  write_image(ro, "read-only", 1 << 20);
  write_image(media, "media-bytes", 2 << 20);
  Tap tap("fdt0");

  // vsock-out: the guest connects to host port 5000, which the VMM maps to <uds>_5000.
  Fd echo_listener = unix_listen(uds + "_5000");
  auto echo = std::async(std::launch::async, [fd = echo_listener.get()] {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 240000) != 1) return;
    Fd c(::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC));
    if (!c) return;
    uint8_t buf[65536];
    for (ssize_t n; (n = ::read(c.get(), buf, sizeof buf)) > 0;)
      if (!write_all(c.get(), buf, static_cast<size_t>(n))) return;
  });

  Vmm vmm({"--kernel", build_dir() + "/guest/vmlinux", "--initrd",
           build_dir() + "/guest/devtest-initrd.img", "--cpus", "2", "--memory", "256",
           "--drive", "path=" + rw + ",serial=devtest-rw",
           "--drive", "path=" + ro + ",ro,serial=devtest-ro",
           "--drive", "empty,ro,serial=devtest-media",
           "--vsock", "cid=3,uds=" + uds, "--net", "tap=fdt0", "--control", ctl,
           "--append",
           "devtest.checks=cpus,blk,blk-ro,vsock-out,net,media,vsock-in devtest.cpus=2 "
           "devtest.vsock_port=5000 devtest.listen_port=6000 devtest.ip=10.0.2.15 "
           "devtest.peer=10.0.2.1 devtest.host_pings=3"},
          dir);

  std::map<std::string, std::string> verdicts;  // check -> "PASS ..." / "FAIL ..."
  std::string console;
  bool done = false;
  std::future<bool> host_ping;
  std::future<std::string> vsock_in_result;
  std::string media_error = "never asked";
  auto deadline = Clock::now() + 300s;
  LineReader reader(vmm.console.get());
  // The console pipe ends when frakti-vmm exits (nobody else holds its write end).
  while (!done && !reader.eof && Clock::now() < deadline) {
    auto got = reader.next(1s);
    if (!got) continue;
    std::string line = *got;
    console += line + "\n";
    auto at = line.find("devtest: ");
    if (at == std::string::npos) continue;
    std::string msg = line.substr(at + 9);
    if (msg == "done") done = true;
    else if (msg.rfind("net-ready", 0) == 0)
      // Three echo requests, all answered within 60 s (ping fails when fewer replies came).
      // The guest's net check waits until it has answered them before it goes on.
      host_ping = std::async(std::launch::async,
                             [] { return sh("ping -n -c3 -i0.2 -w60 10.0.2.15 >/dev/null"); });
    else if (msg.rfind("media-waiting", 0) == 0) {
      try {
        frakti::vmm::control::ControlClient client(ctl);
        client.set_drive(2, media, true, "devtest-media");
        media_error.clear();
      } catch (const std::exception& e) {
        media_error = e.what();
      }
    } else if (msg.rfind("vsock-listening ", 0) == 0)
      vsock_in_result = std::async(std::launch::async, [uds, port = std::stoul(msg.substr(16))] {
        return vsock_in(uds, static_cast<unsigned>(port), 1 << 20);
      });
    else if (auto sp = msg.find(' '); sp != std::string::npos &&
                                      (msg.compare(sp + 1, 4, "PASS") == 0 ||
                                       msg.compare(sp + 1, 4, "FAIL") == 0))
      verdicts[msg.substr(0, sp)] = msg.substr(sp + 1);
  }
  int status = vmm.wait_exit(60s);
  while (auto rest = reader.next(1s)) console += *rest + "\n";
  INFO("console:\n" << console << "\nvmm log:\n" << vmm.log());

  CHECK(done);
  for (const char* check : {"cpus", "blk", "blk-ro", "vsock-out", "net", "media", "vsock-in"}) {
    INFO("check " << check);
    REQUIRE(verdicts.count(check) == 1);
    CHECK(verdicts[check].rfind("PASS", 0) == 0);
  }
  CHECK(media_error.empty());
  REQUIRE(host_ping.valid());
  CHECK(host_ping.get());
  REQUIRE(vsock_in_result.valid());
  CHECK(vsock_in_result.get().empty());
  // The guest powers off through the power-off port: exit status 0.
  CHECK(status == 0);

  // The guest's write landed in the file.
  Fd fd(::open(rw.c_str(), O_RDONLY | O_CLOEXEC));
  uint8_t block[4096];
  REQUIRE(::pread(fd.get(), block, sizeof block, 4096) == 4096);
  size_t mismatches = 0;
  for (size_t i = 0; i < sizeof block; i++) mismatches += block[i] != pattern_byte(i);
  CHECK(mismatches == 0);
  echo_listener = Fd();
  echo.wait();
  std::system(("rm -rf " + dir).c_str());
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) n++;
  return n;
}

// Every control verb against a running guest, with frakti-vmm's seccomp filters on (the
// default): a syscall missing from the control thread's table (or from the loop's, which
// serves the socket) kills the VMM with SIGSYS, and wait_exit() then reports -1.
// A CONNECT sent while the VM is paused stays pending for longer than the vsock connect
// timeout (2 s): that timeout counts only time the guest could run.
TEST_CASE("every control verb while the guest runs: pause holds a vsock CONNECT until resume",
          "[kvm][root]") {
  namespace ctl_ns = frakti::vmm::control;
  require_kvm();
  const std::string dir = make_temp_dir();
  const std::string uds = dir + "/vsock", ctl = dir + "/control", media = dir + "/media.img";
  write_image(media, "media-bytes", 1 << 20);
  // devtest.linger: after its checks the guest stays up, so only our stop ends the VM.
  Vmm vmm({"--kernel", build_dir() + "/guest/vmlinux", "--initrd",
           build_dir() + "/guest/devtest-initrd.img", "--cpus", "2", "--vsock",
           "cid=3,uds=" + uds, "--drive", "empty,ro,serial=devtest-media", "--control", ctl,
           "--log-level", "debug", "--append",
           "devtest.checks=cpus,vsock-in devtest.cpus=2 devtest.listen_port=6000 "
           "devtest.bytes=65536 devtest.linger=1"},
          dir);
  std::string console;
  bool listening = false;
  LineReader reader(vmm.console.get());
  auto deadline = Clock::now() + 240s;
  while (!listening && !reader.eof && Clock::now() < deadline) {
    std::string line = reader.next(1s).value_or("");
    console += line + "\n";
    listening = line.find("devtest: vsock-listening 6000") != std::string::npos;
  }
  INFO("console:\n" << console << "\nvmm log:\n" << vmm.log());
  REQUIRE(listening);

  ctl_ns::ControlClient client(ctl);
  // status and boot_time.
  auto s = client.status();
  CHECK(s.state == ctl_ns::VmState::running);
  CHECK(s.vcpus == 2);
  // The guest's init wrote the boot timer before running its checks.
  CHECK(s.boot_time.has_value());
  if (s.boot_time) {
    CHECK(s.boot_time->count() > 0);
    CHECK(*s.boot_time < s.uptime);
    CHECK(client.boot_time() == s.boot_time);
  }
  REQUIRE(s.drives.size() == 1);
  CHECK(s.drives[0].path.empty());

  // pause and resume, each refused in the wrong state.
  client.pause();
  CHECK(client.status().state == ctl_ns::VmState::paused);
  CHECK_THROWS_AS(client.pause(), ctl_ns::ControlError);
  // A paused guest cannot accept a connection: no OK while paused, OK soon after resume.
  Fd conn = unix_connect(uds);
  REQUIRE(conn);
  REQUIRE(::write(conn.get(), "CONNECT 6000\n", 13) == 13);
  CHECK(read_line_timeout(conn.get(), 3s).empty());
  client.resume();
  CHECK(client.status().state == ctl_ns::VmState::running);
  CHECK_THROWS_AS(client.resume(), ctl_ns::ControlError);
  std::string answer = read_line_timeout(conn.get(), 60s);
  {
    INFO("vmm log after resume:\n" << vmm.log());
    CHECK(answer.rfind("OK ", 0) == 0);
  }
  conn = Fd();

  // Media swap: insert, a missing file (refused, the slot keeps its media), eject.
  client.set_drive(0, media, true, "devtest-media");
  s = client.status();
  REQUIRE(s.drives.size() == 1);
  CHECK(s.drives[0].path == media);
  CHECK(s.drives[0].serial == "devtest-media");
  try {
    client.set_drive(0, dir + "/missing.img", true, "devtest-missing");
    FAIL("set_drive accepted a missing file");
  } catch (const ctl_ns::ControlError& e) {
    CHECK(e.code() == ctl_ns::ErrorCode::not_found);
  }
  CHECK(client.status().drives.at(0).path == media);
  client.set_drive(0, std::nullopt, true, "");
  CHECK(client.status().drives.at(0).path.empty());

  // That connection was the guest's one accept; the guest reports it and lingers.
  for (auto end = Clock::now() + 120s; !reader.eof && Clock::now() < end;) {
    std::string line = reader.next(1s).value_or("");
    console += line + "\n";
    if (line.find("devtest: done") != std::string::npos) break;
  }
  CHECK(console.find("devtest: vsock-in PASS") != std::string::npos);
  CHECK(console.find("devtest: done") != std::string::npos);

  // stop: the VMM types Ctrl-Alt-Del, which the lingering guest ignores; it does not power
  // off within 2 s, so the VMM hard-stops it.
  // nullopt means the VMM exited before its reply got out, which is a stop too.
  auto stopped = client.stop(true, 2s);
  CHECK((!stopped || stopped->forced));
  int status = vmm.wait_exit(60s);
  std::string log = vmm.log();
  INFO("vmm log at exit:\n" << log);
  CHECK(status == 0);  // -1: killed (SIGSYS from a seccomp filter) or hung
  CHECK(log.find("stopped by the host") != std::string::npos);
  CHECK(log.find("asked the guest to shut down (Ctrl-Alt-Del)") != std::string::npos);
  // The verbs above ran under the filters: the control thread's and the loop's were in.
  CHECK(count(log, "control filter installed") == 1);
  CHECK(count(log, "event_loop filter installed") == 1);
  std::system(("rm -rf " + dir).c_str());
}
