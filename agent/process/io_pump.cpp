#include "agent/process/io_pump.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/write.hpp>

#include "agent/sys/process.hpp"
#include "common/log.hpp"

namespace frakti::agent::process {

namespace {
constexpr const char* kLog = "agent-io";
}

std::shared_ptr<IoPump> IoPump::start(boost::asio::io_context& io,
                                      std::weak_ptr<protocol::Session> session,
                                      const StdioRequest& streams, AgentStdio fds) {
  std::shared_ptr<IoPump> pump(new IoPump(io, session));
  pump->terminal_ = streams.terminal;
  pump->stdin_stream_ = streams.stdin_stream;
  if (fds.pty_master) {
    auto master = std::make_shared<Descriptor>(io, fds.pty_master.release());
    pump->stdout_.desc = master;
    pump->stdout_.stream = streams.stdout_stream;
    if (streams.stdin_stream) pump->stdin_ = master;
  } else {
    if (fds.out) {
      pump->stdout_.desc = std::make_shared<Descriptor>(io, fds.out.release());
      pump->stdout_.stream = streams.stdout_stream;
    }
    if (fds.err) {
      pump->stderr_.desc = std::make_shared<Descriptor>(io, fds.err.release());
      pump->stderr_.stream = streams.stderr_stream;
    }
    if (fds.in) pump->stdin_ = std::make_shared<Descriptor>(io, fds.in.release());
  }
  for (Output* out : {&pump->stdout_, &pump->stderr_}) {
    if (!out->desc) continue;
    ++pump->open_outputs_;
    pump->read_output(*out);
  }
  if (pump->stdin_ && pump->stdin_stream_) {
    if (auto s = session.lock()) s->open_receive_stream(pump->stdin_stream_);
    pump->read_stdin();
  }
  return pump;
}

IoPump::~IoPump() = default;

void IoPump::read_output(Output& out) {
  out.desc->async_read_some(
      boost::asio::buffer(out.buf),
      [self = shared_from_this(), &out](const boost::system::error_code& ec, size_t n) {
        if (ec) {
          // EOF on a pipe; EIO on a pty master once every holder of the slave closed it.
          if (ec != boost::asio::error::operation_aborted) self->finish_output(out);
          return;
        }
        auto session = self->session_.lock();
        if (out.host_gone || out.stream == 0 || !session || !session->is_open()) {
          out.host_gone = true;
          self->read_output(out);  // drain: the process must not block on a full pipe
          return;
        }
        session->async_write_stream(out.stream, std::string(out.buf.data(), n),
                                    [self, &out](std::error_code wec) {
                                      if (wec) out.host_gone = true;
                                      if (out.desc && out.desc->is_open()) self->read_output(out);
                                    });
      });
}

void IoPump::finish_output(Output& out) {
  if (out.done) return;
  out.done = true;
  if (auto session = session_.lock();
      session && session->is_open() && out.stream && !out.host_gone) {
    session->finish_stream(out.stream);
  }
  boost::system::error_code ignored;
  if (out.desc && out.desc != stdin_) out.desc->close(ignored);
  --open_outputs_;
}

void IoPump::read_stdin() {
  auto session = session_.lock();
  if (!session || stdin_closed_) return;
  session->async_read_stream(
      stdin_stream_, [self = shared_from_this()](std::error_code ec, std::string data) {
        if (ec) {
          // end_of_stream (FIN), stream_reset or connection gone: the process sees EOF.
          self->close_stdin();
          return;
        }
        if (self->stdin_closed_ || !self->stdin_) return;
        auto buf = std::make_shared<std::string>(std::move(data));
        boost::asio::async_write(*self->stdin_, boost::asio::buffer(*buf),
                                 [self, buf](const boost::system::error_code& wec, size_t) {
                                   if (wec) {
                                     // The process closed its stdin (EPIPE): drop the rest.
                                     if (wec != boost::asio::error::operation_aborted) {
                                       common::log::debug(kLog, "stdin write failed: {}",
                                                          wec.message());
                                     }
                                     self->close_stdin();
                                     return;
                                   }
                                   self->read_stdin();
                                 });
      });
}

void IoPump::close_stdin() {
  if (stdin_closed_) return;
  stdin_closed_ = true;
  if (!stdin_) return;
  if (terminal_) {
    // The pty is also the output; the line discipline turns VEOF into end-of-file.
    static const char eof = 4;
    boost::system::error_code ignored;
    boost::asio::write(*stdin_, boost::asio::buffer(&eof, 1), ignored);
  } else {
    boost::system::error_code ignored;
    stdin_->close(ignored);
  }
  stdin_.reset();
}

bool IoPump::resize(unsigned rows, unsigned cols) {
  if (!terminal_ || !stdout_.desc || !stdout_.desc->is_open()) return false;
  sys::set_window_size(stdout_.desc->native_handle(), rows, cols);
  return true;
}

void IoPump::stop() {
  boost::system::error_code ignored;
  stdin_closed_ = true;
  if (stdin_) stdin_->close(ignored);
  stdin_.reset();
  for (Output* out : {&stdout_, &stderr_}) {
    if (out->desc) out->desc->close(ignored);
  }
}

}  // namespace frakti::agent::process
