#pragma once
// IoPump: moves a process's output to the host's streams and the host's stdin stream into
// the process, with the protocol's backpressure: the next chunk is read from a pipe only when
// the previous one fit into the stream's credit, so a host that stops reading stops the
// process (its pipe fills) instead of growing the agent's memory. When the connection that
// started the process goes away (or the host resets a stream), output is drained and
// dropped so the process never blocks forever.
//
// Threading: the agent's io_context thread only.

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <functional>
#include <memory>
#include <string>

#include "agent/process/stdio.hpp"
#include "agent/protocol/session.hpp"

namespace frakti::agent::process {

class IoPump : public std::enable_shared_from_this<IoPump> {
 public:
  /// Starts pumping. Opens the stdin stream on the session (the caller must do this inside
  /// the handler of the request that names it). on_output_done runs once all output
  /// streams ended (process and its children closed stdout/stderr).
  static std::shared_ptr<IoPump> start(boost::asio::io_context& io,
                                       std::weak_ptr<protocol::Session> session,
                                       const StdioRequest& streams, AgentStdio fds);
  ~IoPump();
  IoPump(const IoPump&) = delete;
  IoPump& operator=(const IoPump&) = delete;

  /// Ends the process's stdin (pipe: close it; terminal: send the EOF character).
  void close_stdin();
  /// Changes the terminal size; false when the process has no terminal.
  bool resize(unsigned rows, unsigned cols);
  bool terminal() const { return terminal_; }
  /// True once every output stream reached end-of-file.
  bool output_done() const { return open_outputs_ == 0; }
  /// Stops everything (container removal).
  void stop();

 private:
  using Descriptor = boost::asio::posix::stream_descriptor;
  struct Output {
    std::shared_ptr<Descriptor> desc;
    uint32_t stream = 0;
    bool host_gone = false;
    bool done = false;
    std::array<char, 32 * 1024> buf{};
  };
  IoPump(boost::asio::io_context& io, std::weak_ptr<protocol::Session> session)
      : io_(io), session_(std::move(session)) {}
  void read_output(Output& out);
  void finish_output(Output& out);
  void read_stdin();

  boost::asio::io_context& io_;
  std::weak_ptr<protocol::Session> session_;
  bool terminal_ = false;
  Output stdout_, stderr_;
  std::shared_ptr<Descriptor> stdin_;
  uint32_t stdin_stream_ = 0;
  bool stdin_closed_ = false;
  int open_outputs_ = 0;
};

}  // namespace frakti::agent::process
