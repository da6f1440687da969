#include "vmm/control/control_client.hpp"

#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "common/error.hpp"
#include "vmm/control/unix_socket.hpp"

namespace frakti::vmm::control {
namespace {

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::clamp<int64_t>(left.count(), 0, INT32_MAX));
}

/// Waits for events on fd until deadline; throws ETIMEDOUT naming what was awaited.
void wait_for(int fd, short events, Clock::time_point deadline, const std::string& what) {
  for (;;) {
    pollfd p{fd, events, 0};
    int rc = common::retry_eintr([&] { return ::poll(&p, 1, remaining_ms(deadline)); });
    if (rc < 0) common::throw_errno(fmt::format("poll {}", what));
    if (rc > 0) return;
    if (Clock::now() >= deadline) common::throw_error(ETIMEDOUT, what);
  }
}

[[noreturn]] void protocol_error(const std::string& path, const std::string& why) {
  common::throw_error(EPROTO,
                      fmt::format("control socket {} sent a malformed reply: {}", path, why));
}

}  // namespace

ControlClient::ControlClient(std::string path, Options options)
    : path_(std::move(path)), options_(options) {
  sockaddr_un addr = unix_address(path_);
  auto deadline = Clock::now() + options_.connect_timeout;
  for (;;) {
    common::Fd fd(common::check(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0),
                                "socket for control socket {}", path_));
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      fd_ = std::move(fd);
      return;
    }
    int err = errno;
    // EAGAIN: the listen backlog is full. ENOENT/ECONNREFUSED: the VMM is not (yet) listening.
    bool retry = err == EAGAIN || err == EINTR ||
                 (options_.wait_for_socket && (err == ENOENT || err == ECONNREFUSED));
    if (!retry || Clock::now() >= deadline) {
      std::string hint = err == ENOENT || err == ECONNREFUSED
                             ? " (is the VM running? each frakti-vmm serves its own socket)"
                         : err == EACCES ? " (the socket is owner-only: run as its owner or root)"
                                         : "";
      common::throw_error(err == EAGAIN ? ETIMEDOUT : err,
                          fmt::format("connect to control socket {}{}", path_, hint));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

Json ControlClient::call(std::string_view method, const Json& params,
                         std::optional<std::chrono::milliseconds> timeout) {
  return *call_impl(method, params, Clock::now() + timeout.value_or(options_.call_timeout), false);
}

std::optional<Json> ControlClient::call_impl(std::string_view method, const Json& params,
                                             Deadline deadline, bool eof_ok) {
  if (!fd_)
    common::throw_error(ENOTCONN, fmt::format("control socket {}: connection closed", path_));
  uint64_t id = next_id_++;
  bool sent = write_line(encode_request(id, method, params), deadline);
  for (;;) {
    std::optional<std::string> line = read_line(deadline);
    if (!line) {
      fd_.reset();
      // The VMM closes the socket when it exits; after a delivered stop that means "stopped".
      if (eof_ok && sent) return std::nullopt;
      common::throw_error(ECONNRESET, fmt::format("control socket {} closed the connection "
                                                  "before answering '{}' (did the VMM exit?)",
                                                  path_, method));
    }
    Json reply = Json::parse(*line, nullptr, false);
    if (reply.is_discarded() || !reply.is_object()) protocol_error(path_, "not a JSON object");
    auto id_it = reply.find("id");
    if (id_it == reply.end()) protocol_error(path_, "no 'id'");
    bool ours = id_it->is_number_unsigned() && id_it->get<uint64_t>() == id;
    // A null id answers a line the server could not read (or refuses the connection): it is
    // about us, since we send one request at a time.
    if (!ours && !id_it->is_null()) {
      // A late reply to an earlier call that timed out: skip it.
      if (id_it->is_number_unsigned() && id_it->get<uint64_t>() < id) continue;
      protocol_error(path_, "a reply to a request we did not send");
    }
    if (auto err = reply.find("error"); err != reply.end()) {
      if (!err->is_object()) protocol_error(path_, "'error' is not an object");
      auto code = err->find("code");
      auto message = err->find("message");
      if (code == err->end() || !code->is_string() || message == err->end() ||
          !message->is_string()) {
        protocol_error(path_, "'error' lacks a code or a message");
      }
      // An unknown code from a newer VMM still carries its message.
      throw ControlError(parse_error_code(code->get<std::string>()).value_or(ErrorCode::internal),
                         message->get<std::string>());
    }
    if (!ours) protocol_error(path_, "a result with a null id");
    auto result = reply.find("result");
    if (result == reply.end() || !result->is_object()) protocol_error(path_, "no 'result' object");
    return std::move(*result);
  }
}

bool ControlClient::write_line(const std::string& line, Deadline deadline) {
  size_t done = 0;
  while (done < line.size()) {
    ssize_t n = ::send(fd_.get(), line.data() + done, line.size() - done, MSG_NOSIGNAL);
    if (n >= 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EPIPE || errno == ECONNRESET) return false;
    if (errno != EAGAIN) common::throw_errno(fmt::format("send to control socket {}", path_));
    wait_for(fd_.get(), POLLOUT, deadline, fmt::format("send to control socket {}", path_));
  }
  return true;
}

std::optional<std::string> ControlClient::read_line(Deadline deadline) {
  for (;;) {
    if (size_t nl = in_.find('\n'); nl != std::string::npos) {
      std::string line = in_.substr(0, nl);
      in_.erase(0, nl + 1);
      return line;
    }
    if (in_.size() > options_.max_reply_bytes) {
      protocol_error(path_, fmt::format("a reply longer than {} bytes", options_.max_reply_bytes));
    }
    char buf[16384];
    ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    if (n > 0) {
      in_.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) return std::nullopt;
    if (errno == EINTR) continue;
    if (errno == ECONNRESET) return std::nullopt;
    if (errno != EAGAIN) common::throw_errno(fmt::format("receive from control socket {}", path_));
    wait_for(fd_.get(), POLLIN, deadline,
             fmt::format("waiting for a reply from control socket {}", path_));
  }
}

VmStatus ControlClient::status() {
  Json result = call("status");
  try {
    return status_from_json(result);
  } catch (const std::invalid_argument& e) {
    protocol_error(path_, e.what());
  }
}

std::optional<std::chrono::microseconds> ControlClient::boot_time() {
  Json result = call("boot_time");
  auto it = result.find("boot_time_us");
  if (it == result.end()) protocol_error(path_, "boot_time result has no 'boot_time_us'");
  if (it->is_null()) return std::nullopt;
  if (!it->is_number_unsigned()) protocol_error(path_, "'boot_time_us' is not a number");
  return std::chrono::microseconds(it->get<int64_t>());
}

void ControlClient::pause() {
  call("pause");
}

void ControlClient::resume() {
  call("resume");
}

std::optional<StopResult> ControlClient::stop(bool graceful, std::chrono::milliseconds timeout) {
  Json params{{"graceful", graceful},
              {"timeout_ms", static_cast<uint64_t>(std::max<int64_t>(0, timeout.count()))}};
  auto result = call_impl("stop", params, Clock::now() + timeout + options_.call_timeout, true);
  if (!result) return std::nullopt;
  auto forced = result->find("forced");
  if (forced == result->end() || !forced->is_boolean()) {
    protocol_error(path_, "stop result has no boolean 'forced'");
  }
  return StopResult{forced->get<bool>()};
}

void ControlClient::set_drive(uint32_t slot, const std::optional<std::string>& path, bool read_only,
                              const std::string& serial) {
  Json params{{"slot", slot}, {"read_only", read_only}};
  if (path) {
    params["path"] = *path;
    params["serial"] = serial;
  }
  call("set_drive", params);
}

std::string format_status(const VmStatus& s) {
  std::string out = fmt::format(
      "state:      {}\nvcpus:      {}\nmemory:     {} MiB\n"
      "uptime:     {:.3f} s\n",
      vm_state_name(s.state), s.vcpus, s.memory_mib, static_cast<double>(s.uptime.count()) / 1e3);
  out += s.boot_time ? fmt::format("boot time:  {:.3f} ms\n",
                                   static_cast<double>(s.boot_time->count()) / 1e3)
                     : std::string("boot time:  (guest not ready yet)\n");
  for (const auto& d : s.drives) {
    out += d.path.empty()
               ? fmt::format("drive {}:    (empty)\n", d.slot)
               : fmt::format("drive {}:    {} ({}{})\n", d.slot, d.path, d.read_only ? "ro" : "rw",
                             d.serial.empty() ? "" : ", serial " + d.serial);
  }
  return out;
}

}  // namespace frakti::vmm::control
