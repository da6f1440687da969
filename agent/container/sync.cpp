#include "agent/container/sync.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <cstring>
#include <exception>
#include <system_error>

#include "agent/agent_error.hpp"
#include "common/error.hpp"

namespace frakti::agent::container {

namespace {
struct Wire {
  uint32_t step;
  int32_t code;
  int32_t errno_value;
  char text[1012];
};
}  // namespace

SyncPair make_sync_pair() {
  int fds[2];
  common::check(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds),
                "socketpair for the container sync channel");
  return {common::Fd(fds[0]), common::Fd(fds[1])};
}

void sync_send(int fd, SyncStep step) {
  Wire w{};
  w.step = static_cast<uint32_t>(step);
  if (common::retry_eintr([&] { return ::send(fd, &w, offsetof(Wire, text), MSG_NOSIGNAL); }) < 0) {
    common::throw_errno(fmt::format("send sync step {}", static_cast<uint32_t>(step)));
  }
}

void sync_send_current_exception(int fd, const char* during) {
  Wire w{};
  w.step = static_cast<uint32_t>(SyncStep::error);
  w.code = v1::Error::CODE_INTERNAL;
  std::string text;
  try {
    throw;
  } catch (const AgentError& e) {
    w.code = e.code();
    w.errno_value = e.errno_value();
    text = e.what();
  } catch (const std::system_error& e) {
    w.errno_value = e.code().value();
    text = e.what();
  } catch (const std::exception& e) {
    text = e.what();
  } catch (...) {
    text = "unknown exception";
  }
  text = fmt::format("{}: {}", during, text);
  size_t n = std::min(text.size(), sizeof w.text);
  std::memcpy(w.text, text.data(), n);
  ::send(fd, &w, offsetof(Wire, text) + n, MSG_NOSIGNAL);
}

std::optional<SyncMessage> sync_receive(int fd, std::chrono::milliseconds timeout,
                                        const char* waiting_for) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 0)));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) common::throw_errno("poll the container sync channel");
    if (n == 0) {
      throw AgentError(
          v1::Error::CODE_DEADLINE_EXCEEDED,
          fmt::format("timed out after {} ms waiting for {}", timeout.count(), waiting_for));
    }
    Wire w{};
    ssize_t got = common::retry_eintr([&] { return ::recv(fd, &w, sizeof w, 0); });
    if (got < 0) {
      if (errno == ECONNRESET) return std::nullopt;
      common::throw_errno("read the container sync channel");
    }
    if (got == 0) return std::nullopt;
    if (static_cast<size_t>(got) < offsetof(Wire, text)) {
      throw AgentError(
          v1::Error::CODE_INTERNAL,
          fmt::format("short sync message ({} bytes) while waiting for {}", got, waiting_for));
    }
    SyncMessage m;
    m.step = static_cast<SyncStep>(w.step);
    m.code = v1::Error::Code_IsValid(w.code) ? static_cast<v1::Error::Code>(w.code)
                                             : v1::Error::CODE_INTERNAL;
    m.errno_value = w.errno_value;
    m.text.assign(w.text, static_cast<size_t>(got) - offsetof(Wire, text));
    return m;
  }
}

void sync_send_fd(int sock, SyncStep step, int fd) {
  Wire w{};
  w.step = static_cast<uint32_t>(step);
  iovec iov{&w, offsetof(Wire, text)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  if (common::retry_eintr([&] { return ::sendmsg(sock, &msg, MSG_NOSIGNAL); }) < 0) {
    common::throw_errno(fmt::format("send sync step {} with an fd", static_cast<uint32_t>(step)));
  }
}

common::Fd sync_receive_fd(int sock, SyncStep step, std::chrono::milliseconds timeout,
                           const char* waiting_for) {
  pollfd p{sock, POLLIN, 0};
  int n = common::retry_eintr([&] { return ::poll(&p, 1, static_cast<int>(timeout.count())); });
  if (n < 0) common::throw_errno("poll the container sync channel");
  if (n == 0) {
    throw AgentError(
        v1::Error::CODE_DEADLINE_EXCEEDED,
        fmt::format("timed out after {} ms waiting for {}", timeout.count(), waiting_for));
  }
  Wire w{};
  iovec iov{&w, sizeof w};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t got = common::retry_eintr([&] { return ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC); });
  if (got < 0) common::throw_errno("read the container sync channel");
  common::Fd fd;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      int raw = -1;
      std::memcpy(&raw, CMSG_DATA(c), sizeof raw);
      fd = common::Fd(raw);
    }
  }
  if (got == 0) {
    throw AgentError(v1::Error::CODE_INTERNAL,
                     fmt::format("the container process exited while the agent was waiting for {}",
                                 waiting_for));
  }
  if (static_cast<size_t>(got) < offsetof(Wire, text)) {
    throw AgentError(v1::Error::CODE_INTERNAL,
                     fmt::format("short sync message while waiting for {}", waiting_for));
  }
  if (w.step == static_cast<uint32_t>(SyncStep::error)) {
    auto code = v1::Error::Code_IsValid(w.code) ? static_cast<v1::Error::Code>(w.code)
                                                : v1::Error::CODE_INTERNAL;
    throw AgentError(code, std::string(w.text, static_cast<size_t>(got) - offsetof(Wire, text)),
                     w.errno_value);
  }
  if (w.step != static_cast<uint32_t>(step) || !fd) {
    throw AgentError(v1::Error::CODE_INTERNAL,
                     fmt::format("unexpected sync message while waiting for {}", waiting_for));
  }
  return fd;
}

void sync_expect(int fd, SyncStep step, std::chrono::milliseconds timeout,
                 const char* waiting_for) {
  auto m = sync_receive(fd, timeout, waiting_for);
  if (!m) {
    throw AgentError(v1::Error::CODE_INTERNAL,
                     fmt::format("the container process exited while the agent was waiting for {}",
                                 waiting_for));
  }
  if (m->step == SyncStep::error) throw AgentError(m->code, m->text, m->errno_value);
  if (m->step != step) {
    throw AgentError(
        v1::Error::CODE_INTERNAL,
        fmt::format("sync step {} received while waiting for {} (step {})",
                    static_cast<uint32_t>(m->step), waiting_for, static_cast<uint32_t>(step)));
  }
}

}  // namespace frakti::agent::container
