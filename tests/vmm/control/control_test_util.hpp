#pragma once
// Helpers for control-socket tests: a temp dir, a fake VM behind the ControlHandler seam, a
// real ControlServer on its own event-loop thread, and a raw line client with timeouts (so a
// broken server fails a test instead of hanging it).

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "vmm/control/control_server.hpp"

namespace frakti::vmm::control::test {

struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/frakti-control-XXXXXX";
    if (!::mkdtemp(tmpl)) common::throw_errno("mkdtemp");
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string path;
};

/// A VM as the control socket sees it: state, four drive slots, and a gate that can hold stop()
/// (to prove a slow stop blocks nobody). Errors follow what a real VM would report.
class FakeVm : public ControlHandler {
 public:
  static constexpr uint32_t kSlots = 4;

  FakeVm() {
    status_.vcpus = 2;
    status_.memory_mib = 512;
    status_.uptime = std::chrono::milliseconds(1500);
    for (uint32_t i = 0; i < kSlots; ++i) status_.drives.push_back(DriveSlotInfo{i, "", true, ""});
  }

  uint32_t drive_slot_count() const override { return kSlots; }

  VmStatus status() override {
    std::lock_guard lock(mu_);
    ++status_calls_;
    status_thread_ = std::this_thread::get_id();
    return status_;
  }
  void pause() override {
    std::lock_guard lock(mu_);
    if (status_.state != VmState::running) {
      throw ControlError(ErrorCode::failed_precondition,
                         fmt::format("the VM is {}, not running", vm_state_name(status_.state)));
    }
    status_.state = VmState::paused;
    command_thread_ = std::this_thread::get_id();
  }
  void resume() override {
    std::lock_guard lock(mu_);
    if (status_.state != VmState::paused) {
      throw ControlError(ErrorCode::failed_precondition,
                         fmt::format("the VM is {}, not paused", vm_state_name(status_.state)));
    }
    status_.state = VmState::running;
  }
  StopResult stop(bool graceful, std::chrono::milliseconds timeout) override {
    std::unique_lock lock(mu_);
    stop_calls_++;
    last_stop_timeout_ = timeout;
    status_.state = VmState::stopping;
    cv_.notify_all();
    cv_.wait(lock, [&] { return !hold_stop_; });
    status_.state = VmState::stopped;
    return StopResult{!graceful};
  }
  void set_drive(uint32_t slot, const std::optional<std::string>& path, bool read_only,
                 const std::string& serial) override {
    std::lock_guard lock(mu_);
    ++set_drive_calls_;
    if (path == "/missing/image.erofs") {
      throw std::system_error(ENOENT, std::generic_category(), "open /missing/image.erofs");
    }
    if (path == "/broken") throw std::runtime_error("the blk device refused the swap");
    if (path == "/bad-arg") throw std::invalid_argument("image is not a multiple of 512 bytes");
    if (path == "/weird") throw 42;
    status_.drives.at(slot) =
        path ? DriveSlotInfo{slot, *path, read_only, serial} : DriveSlotInfo{slot, "", true, ""};
  }

  // Test controls.
  void hold_stop(bool hold) {
    std::lock_guard lock(mu_);
    hold_stop_ = hold;
    cv_.notify_all();
  }
  /// Waits until stop() has been entered count times.
  bool wait_stop_entered(int count) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return stop_calls_ >= count; });
  }
  void set_boot_time(std::chrono::microseconds t) {
    std::lock_guard lock(mu_);
    status_.boot_time = t;
  }
  VmStatus snapshot() {
    std::lock_guard lock(mu_);
    return status_;
  }
  int set_drive_calls() {
    std::lock_guard lock(mu_);
    return set_drive_calls_;
  }
  int stop_calls() {
    std::lock_guard lock(mu_);
    return stop_calls_;
  }
  std::chrono::milliseconds last_stop_timeout() {
    std::lock_guard lock(mu_);
    return last_stop_timeout_;
  }
  std::thread::id status_thread() {
    std::lock_guard lock(mu_);
    return status_thread_;
  }
  std::thread::id command_thread() {
    std::lock_guard lock(mu_);
    return command_thread_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  VmStatus status_;
  bool hold_stop_ = false;
  int stop_calls_ = 0;
  int set_drive_calls_ = 0;
  int status_calls_ = 0;
  std::chrono::milliseconds last_stop_timeout_{0};
  std::thread::id status_thread_;
  std::thread::id command_thread_;
};

/// A real ControlServer on a temp socket, its io_context run by one thread (the "event loop").
struct Harness {
  explicit Harness(ControlServer::Options options = {})
      : path(dir.path + "/control.sock"), work(boost::asio::make_work_guard(io)) {
    server.emplace(io, path, vm, options);
    loop = std::thread([this] { io.run(); });
  }
  ~Harness() {
    vm.hold_stop(false);
    io.stop();
    loop.join();
    server.reset();
  }
  /// Runs f on the loop thread and returns its result.
  template <typename F>
  auto on_loop(F f) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto result = task.get_future();
    boost::asio::post(io, [&task] { task(); });
    return result.get();
  }
  size_t connections() {
    return on_loop([this] { return server->connection_count(); });
  }
  /// Polls until the server has n connections (closing is asynchronous).
  bool wait_connections(size_t n) {
    for (int i = 0; i < 1000; ++i) {
      if (connections() == n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

  TempDir dir;
  std::string path;
  FakeVm vm;
  boost::asio::io_context io;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work;
  std::optional<ControlServer> server;
  std::thread loop;
};

inline sockaddr_un unix_addr(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  return a;
}

/// A blocking line client with 10 s I/O timeouts.
class RawClient {
 public:
  explicit RawClient(const std::string& path) {
    fd_ = common::Fd(common::check(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), "socket"));
    sockaddr_un a = unix_addr(path);
    common::check(::connect(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), "connect {}",
                  path);
    timeval tv{10, 0};
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  /// Sends everything; false when the server has closed the connection.
  bool send(const std::string& s) {
    size_t done = 0;
    while (done < s.size()) {
      ssize_t n = ::send(fd_.get(), s.data() + done, s.size() - done, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    return true;
  }
  /// For oversized input the server rejects: sends until everything is gone or the server has
  /// closed the connection (it may close before the last bytes leave). False only on a timeout
  /// or another error.
  bool send_until_closed(const std::string& s) {
    size_t done = 0;
    while (done < s.size()) {
      ssize_t n = ::send(fd_.get(), s.data() + done, s.size() - done, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) return true;
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    return true;
  }
  /// One line without its newline; nullopt on EOF, reset or timeout.
  std::optional<std::string> line() {
    for (;;) {
      if (auto nl = buf_.find('\n'); nl != std::string::npos) {
        std::string l = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return l;
      }
      char tmp[8192];
      ssize_t n = ::recv(fd_.get(), tmp, sizeof tmp, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return std::nullopt;
      buf_.append(tmp, static_cast<size_t>(n));
    }
  }
  /// The next line parsed as JSON (fails the test when there is none).
  Json reply() {
    auto l = line();
    if (!l) throw std::runtime_error("no reply line from the control server");
    return Json::parse(*l);
  }
  /// True when the server closed the connection (after any remaining lines).
  bool at_eof() {
    while (line()) {
    }
    char c;
    return ::recv(fd_.get(), &c, 1, 0) == 0;
  }
  void shutdown_write() { ::shutdown(fd_.get(), SHUT_WR); }
  int fd() const { return fd_.get(); }

 private:
  common::Fd fd_;
  std::string buf_;
};

}  // namespace frakti::vmm::control::test
