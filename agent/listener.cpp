#include "agent/listener.hpp"

#include <linux/vm_sockets.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "common/error.hpp"

namespace frakti::agent {

common::Fd listen_on(const ListenAddress& a) {
  if (a.kind == ListenAddress::Kind::vsock) {
    common::Fd fd(::socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) common::throw_errno("socket AF_VSOCK (does the guest kernel have vsock?)");
    sockaddr_vm addr{};
    addr.svm_family = AF_VSOCK;
    addr.svm_cid = VMADDR_CID_ANY;
    addr.svm_port = a.port;
    common::check(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr),
                  "bind vsock port {}", a.port);
    common::check(::listen(fd.get(), 16), "listen on vsock port {}", a.port);
    return fd;
  }
  common::Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) common::throw_errno("socket AF_UNIX");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (a.path.size() >= sizeof addr.sun_path)
    common::throw_error(ENAMETOOLONG, fmt::format("unix socket path {}", a.path));
  std::memcpy(addr.sun_path, a.path.c_str(), a.path.size() + 1);
  ::unlink(a.path.c_str());
  common::check(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr),
                "bind unix socket {}", a.path);
  common::check(::listen(fd.get(), 16), "listen on unix socket {}", a.path);
  return fd;
}

}  // namespace frakti::agent
