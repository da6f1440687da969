#include "vmm/vm/console.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.hpp"
#include "common/log.hpp"
#include "vmm/devices/serial.hpp"

namespace frakti::vmm::vm {

Console::Console(const config::ConsoleConfig& c) {
  switch (c.kind) {
    case config::ConsoleConfig::Kind::stdio:
      out_fd_ = STDOUT_FILENO;
      input_ = true;
      break;
    case config::ConsoleConfig::Kind::file:
      owned_out_.reset(::open(c.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640));
      if (!owned_out_) common::throw_errno(fmt::format("open console file {}", c.path));
      out_fd_ = owned_out_.get();
      break;
    case config::ConsoleConfig::Kind::none: break;
  }
}

void Console::write(std::span<const uint8_t> bytes) {
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
  if (!input_) return;
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
  in_ = std::make_unique<boost::asio::posix::stream_descriptor>(loop, fd);
  read_more(serial);
}

void Console::read_more(devices::Serial& serial) {
  in_->async_read_some(boost::asio::buffer(buf_), [this, &serial](auto ec, size_t n) {
    if (ec) {
      if (ec != boost::asio::error::operation_aborted && ec != boost::asio::error::eof)
        common::log::warn("console", "reading console input: {}", ec.message());
      return;  // EOF or error: the guest just gets no more input
    }
    size_t taken = serial.enqueue_input(std::span<const uint8_t>(buf_, n));
    if (taken < n) {
      static common::log::RateLimiter limiter(3, std::chrono::seconds(30));
      if (limiter.allow())
        common::log::warn("console", "guest is not reading its console; {} bytes dropped",
                          n - taken);
    }
    read_more(serial);
  });
}

}  // namespace frakti::vmm::vm
