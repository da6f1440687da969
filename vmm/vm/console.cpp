#include "vmm/vm/console.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <functional>
#include <utility>

#include "common/error.hpp"
#include "common/log.hpp"
#include "vmm/devices/serial.hpp"

namespace frakti::vmm::vm {

namespace {
constexpr const char kBusy[] = "frakti-vmm: the console is busy: another client is attached\r\n";
}  // namespace

Console::Console(const config::ConsoleConfig& c) : kind_(c.kind) {
  switch (c.kind) {
    case config::ConsoleConfig::Kind::stdio: out_fd_ = STDOUT_FILENO; break;
    case config::ConsoleConfig::Kind::file:
      owned_out_.reset(::open(c.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640));
      if (!owned_out_) common::throw_errno(fmt::format("open console file {}", c.path));
      out_fd_ = owned_out_.get();
      break;
    case config::ConsoleConfig::Kind::unix_socket:
      socket_path_ = c.path;
      owner_uid_ = ::geteuid();  // now: the loop thread's seccomp filter has no geteuid
      listener_ = control::listen_owner_only(c.path, 4);
      common::log::info("console", "console on {} (attach with a Unix-socket client, e.g. "
                        "socat -,raw,echo=0 UNIX-CONNECT:{})", c.path, c.path);
      break;
    case config::ConsoleConfig::Kind::none: break;
  }
}

Console::~Console() {
  if (listener_) control::unlink_if_ours(socket_path_, *listener_);
}

void Console::write(std::span<const uint8_t> bytes) {
  if (kind_ == config::ConsoleConfig::Kind::unix_socket) {
    std::lock_guard lock(client_mu_);
    // Non-blocking: a client that does not keep up loses output instead of stalling the vCPU.
    while (client_ && !bytes.empty()) {
      ssize_t n = common::retry_eintr([&] { return ::write(client_.get(), bytes.data(), bytes.size()); });
      if (n <= 0) break;
      bytes = bytes.subspan(static_cast<size_t>(n));
    }
    dropped_bytes_ += bytes.size();
    return;
  }
  if (out_fd_ < 0) return;
  while (!bytes.empty()) {
    ssize_t n = common::retry_eintr([&] { return ::write(out_fd_, bytes.data(), bytes.size()); });
    if (n <= 0) {
      // A full or closed console must not stop the guest: drop the output and say so.
      static common::log::RateLimiter limiter(3, std::chrono::seconds(30));
      write_errors_.fetch_add(1);
      if (limiter.allow())
        common::log::warn("console", "console write failed (errno {}); output dropped", errno);
      return;
    }
    bytes = bytes.subspan(static_cast<size_t>(n));
  }
}

void Console::start_input(boost::asio::io_context& loop, devices::Serial& serial) {
  if (kind_ == config::ConsoleConfig::Kind::unix_socket) {
    // asio owns (and closes) what it wraps: give it a duplicate of the listening socket.
    int fd = ::fcntl(listener_->fd.get(), F_DUPFD_CLOEXEC, 0);
    if (fd < 0) common::throw_errno(fmt::format("dup console socket {}", socket_path_));
    accept_waiter_ = std::make_unique<Stream>(loop, fd);
    accept_next(loop, serial);
    return;
  }
  if (kind_ != config::ConsoleConfig::Kind::stdio) return;
  struct stat st;
  if (::fstat(STDIN_FILENO, &st) != 0) return;
  if (!isatty(STDIN_FILENO) && !S_ISFIFO(st.st_mode)) return;  // /dev/null, files: no input
  // A private open file description, so making it non-blocking does not change the stdin
  // our parent (a shell, a test) shares with us.
  int fd = ::open("/proc/self/fd/0", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    common::log::debug("console", "no console input: reopening stdin failed (errno {})", errno);
    return;
  }
  in_ = std::make_unique<Stream>(loop, fd);
  read_more(*in_, serial, [] {});
}

void Console::accept_next(boost::asio::io_context& loop, devices::Serial& serial) {
  accept_waiter_->async_wait(Stream::wait_read, [this, &loop, &serial](auto ec) {
    if (ec) return;  // the loop is shutting down
    common::Fd client(::accept4(listener_->fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (client) {
      uid_t uid = static_cast<uid_t>(-1);
      try {
        uid = control::peer_uid(client.get());
      } catch (const std::exception&) {
      }
      bool busy;
      {
        std::lock_guard lock(client_mu_);
        busy = client_.valid();
      }
      if (uid != owner_uid_) {
        common::log::warn("console", "refused a console client with uid {}", uid);
      } else if (busy) {
        ssize_t ignored = ::write(client.get(), kBusy, sizeof kBusy - 1);
        (void)ignored;
      } else {
        attach(loop, serial, std::move(client));
      }
    }
    accept_next(loop, serial);
  });
}

void Console::attach(boost::asio::io_context& loop, devices::Serial& serial, common::Fd client) {
  int reader = ::fcntl(client.get(), F_DUPFD_CLOEXEC, 0);
  if (reader < 0) {
    common::log::warn("console", "attaching a console client: dup failed (errno {})", errno);
    return;
  }
  uint64_t dropped;
  {
    std::lock_guard lock(client_mu_);
    client_ = std::move(client);
    dropped = std::exchange(dropped_bytes_, 0);
  }
  common::log::info("console", "console client attached ({} bytes of output dropped while "
                    "none was)", dropped);
  in_ = std::make_unique<Stream>(loop, reader);
  read_more(*in_, serial, [this, &loop] {
    // Not from inside the reader's own handler: destroy it on the next turn of the loop.
    boost::asio::post(loop, [this] { in_.reset(); });
    detach();
  });
}

void Console::detach() {
  uint64_t dropped;
  {
    std::lock_guard lock(client_mu_);
    client_.reset();
    dropped = std::exchange(dropped_bytes_, 0);
  }
  common::log::info("console", "console client detached ({} bytes of output it did not take)",
                    dropped);
}

void Console::read_more(Stream& from, devices::Serial& serial, std::function<void()> done) {
  from.async_read_some(boost::asio::buffer(buf_), [this, &from, &serial, done](auto ec, size_t n) {
    if (ec) {
      if (ec != boost::asio::error::operation_aborted && ec != boost::asio::error::eof)
        common::log::warn("console", "reading console input: {}", ec.message());
      if (ec != boost::asio::error::operation_aborted) done();
      return;  // EOF or error: no more input from here
    }
    size_t taken = serial.enqueue_input(std::span<const uint8_t>(buf_, n));
    if (taken < n) {
      static common::log::RateLimiter limiter(3, std::chrono::seconds(30));
      if (limiter.allow())
        common::log::warn("console", "guest is not reading its console; {} bytes dropped",
                          n - taken);
    }
    read_more(from, serial, done);
  });
}

}  // namespace frakti::vmm::vm
