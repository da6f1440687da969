#include "tools/vmctl/stdio.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>

#include <boost/asio/post.hpp>

#include "common/error.hpp"

namespace frakti::vmctl {

namespace v1 = agent::v1;
using sandbox::LogStream;

RawTerminal::RawTerminal(int fd) : fd_(fd) {
  if (::tcgetattr(fd_, &saved_) != 0) return;
  termios raw = saved_;
  ::cfmakeraw(&raw);
  // Keep output post-processing so our own stderr lines still start at column 0.
  raw.c_oflag |= OPOST;
  if (::tcsetattr(fd_, TCSADRAIN, &raw) == 0) active_ = true;
}

RawTerminal::~RawTerminal() {
  if (active_) ::tcsetattr(fd_, TCSADRAIN, &saved_);
}

std::pair<uint32_t, uint32_t> terminal_size(int fd) {
  winsize ws{};
  if (::ioctl(fd, TIOCGWINSZ, &ws) != 0) return {0, 0};
  return {ws.ws_row, ws.ws_col};
}

namespace {

// write_all that also copes with a non-blocking descriptor shared with our stdin.
void write_host(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n > 0) {
      off += static_cast<size_t>(n);
    } else if (n < 0 && errno == EAGAIN) {
      pollfd p{fd, POLLOUT, 0};
      ::poll(&p, 1, -1);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return;  // the reader went away (EPIPE): drop output, like a closed terminal
    }
  }
}

}  // namespace

StdioBridge::StdioBridge(sandbox::AgentClient& client, Options options) : client_(client), options_(options) {}

StdioBridge::~StdioBridge() {
  *alive_ = false;
  if (input_) {
    boost::system::error_code ec;
    input_->cancel(ec);
    input_->release();
  }
  if (restore_flags_) ::fcntl(STDIN_FILENO, F_SETFL, *restore_flags_);
}

void StdioBridge::attach(v1::Process& p) {
  auto& s = client_.session();
  out_ = s.new_stream_id();
  s.open_receive_stream(out_);
  ++open_outputs_;
  if (!options_.terminal) {
    err_ = s.new_stream_id();
    s.open_receive_stream(err_);
    ++open_outputs_;
  }
  if (options_.input) in_ = s.new_stream_id();
  p.set_stdin_stream(in_);
  p.set_stdout_stream(out_);
  p.set_stderr_stream(err_);
}

void StdioBridge::start() {
  read_output(out_, STDOUT_FILENO, LogStream::stdout_);
  if (err_) read_output(err_, STDERR_FILENO, LogStream::stderr_);
  if (!in_) return;
  // A fresh open file description where the kernel allows one (ttys, pipes, files), so
  // making it non-blocking does not touch the shell's.
  input_fd_ = common::Fd(::open("/proc/self/fd/0", O_RDONLY | O_CLOEXEC));
  if (!input_fd_) {
    input_fd_ = common::Fd(::fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3));
    restore_flags_ = ::fcntl(STDIN_FILENO, F_GETFL);
  }
  try {
    input_ = std::make_unique<boost::asio::posix::stream_descriptor>(client_.io(), input_fd_.get());
    input_->non_blocking(true);
  } catch (const boost::system::system_error&) {
    // epoll refuses regular files and /dev/null: they never block, so plain reads are fine.
    if (input_) input_->release();
    input_.reset();
    input_sync_ = true;
  }
  read_input();
}

bool StdioBridge::output_done() const { return open_outputs_ == 0; }

void StdioBridge::read_output(uint32_t id, int host_fd, LogStream stream) {
  client_.session().async_read_stream(id, [this, alive = alive_, id, host_fd, stream](std::error_code ec, std::string data) {
    if (!*alive) return;
    if (ec) {
      if (options_.log) options_.log->finish(stream);
      --open_outputs_;
      return;
    }
    if (options_.to_host) write_host(host_fd, data);
    if (options_.log) options_.log->write(stream, data);
    read_output(id, host_fd, stream);
  });
}

void StdioBridge::send_input(std::string data) {
  client_.session().async_write_stream(in_, std::move(data), [this, alive = alive_](std::error_code ec) {
    if (!*alive || ec) return;  // the process closed its stdin or ended
    read_input();
  });
}

void StdioBridge::read_input() {
  buffer_.resize(32 * 1024);
  if (input_sync_) {
    ssize_t n = common::retry_eintr([&] { return ::read(input_fd_.get(), buffer_.data(), buffer_.size()); });
    if (n <= 0) {
      client_.session().finish_stream(in_);
      return;
    }
    buffer_.resize(static_cast<size_t>(n));
    // Through the loop, so a large file does not starve everything else.
    boost::asio::post(client_.io(), [this, alive = alive_, data = buffer_]() mutable {
      if (*alive) send_input(std::move(data));
    });
    return;
  }
  input_->async_read_some(boost::asio::buffer(buffer_), [this, alive = alive_](const boost::system::error_code& ec, size_t n) {
    if (!*alive) return;
    if (ec) {
      client_.session().finish_stream(in_);
      return;
    }
    buffer_.resize(n);
    send_input(buffer_);
  });
}

}  // namespace frakti::vmctl
