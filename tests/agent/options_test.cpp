#include "agent/options.hpp"

#include <linux/vm_sockets.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <stdexcept>

#include "agent/listener.hpp"
#include "common/guest_abi.hpp"

using namespace frakti::agent;

TEST_CASE("agent options: defaults are the VM's", "[agent][options]") {
  auto o = parse_options({});
  REQUIRE(o.listen.kind == ListenAddress::Kind::vsock);
  REQUIRE(o.listen.port == frakti::guest_abi::kAgentVsockPort);
  REQUIRE(o.drives == "sysfs");
  REQUIRE(o.state_dir == "/run/frakti");
  REQUIRE(o.cgroup_root == "/sys/fs/cgroup/frakti");
}

TEST_CASE("agent options: host test mode switches", "[agent][options]") {
  auto o = parse_options({"--listen=unix:/tmp/a.sock", "--drives=dir:/tmp/drives",
                          "--state-dir=/tmp/s", "--cgroup-root=none", "--log-level=debug"});
  REQUIRE(o.listen.kind == ListenAddress::Kind::unix_socket);
  REQUIRE(o.listen.path == "/tmp/a.sock");
  REQUIRE(o.drives == "dir:/tmp/drives");
  REQUIRE(o.state_dir == "/tmp/s");
  REQUIRE(o.cgroup_root == "none");
  REQUIRE(parse_listen_address("vsock:5000").port == 5000);
  REQUIRE_FALSE(o.rerooted);
  REQUIRE(parse_options({"--rerooted=1"}).rerooted);
}

TEST_CASE("agent options: hostile table", "[agent][options]") {
  const std::pair<std::vector<std::string>, const char*> cases[] = {
      {{"--listen=vsock:"}, "vsock port"},
      {{"--listen=vsock:0"}, "vsock port"},
      {{"--listen=vsock:12x"}, "vsock port"},
      {{"--listen=vsock:99999999999"}, "vsock port"},
      {{"--listen=unix:relative"}, "unix:/ABSOLUTE"},
      {{"--listen=tcp:1"}, "vsock:PORT"},
      {{"--listen=unix:/" + std::string(200, 'a')}, "too long"},
      {{"--drives=dir:relative"}, "--drives"},
      {{"--drives=usb"}, "--drives"},
      {{"--state-dir=run"}, "not absolute"},
      {{"--cgroup-root=cg"}, "--cgroup-root"},
      {{"--bogus=1"}, "unknown option"},
      {{"--listen"}, "--name=value"},
      {{"--listen="}, "--name=value"},
  };
  for (const auto& [args, message] : cases) {
    INFO(args[0]);
    try {
      parse_options(args);
      FAIL("accepted");
    } catch (const std::invalid_argument& e) {
      REQUIRE_THAT(e.what(), Catch::Contains(message));
    }
  }
}

TEST_CASE("listener: unix socket for host test mode", "[agent][listener]") {
  char dir[] = "/tmp/frakti-agent-listen-XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  std::string path = std::string(dir) + "/a.sock";
  auto fd = listen_on(parse_listen_address("unix:" + path));
  int fd2 = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, path.c_str());
  REQUIRE(::connect(fd2, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  ::close(fd2);
  // A stale socket file from an earlier run is replaced.
  fd.reset();
  auto again = listen_on(parse_listen_address("unix:" + path));
  REQUIRE(again.valid());
  ::unlink(path.c_str());
  ::rmdir(dir);
}

TEST_CASE("listener: vsock for the VM", "[agent][listener]") {
  // Binding needs the vsock core (the guest kernel has it); connecting needs a transport,
  // which only the VM has, so this checks the socket the agent would serve on.
  auto fd = listen_on(parse_listen_address("vsock:41999"));
  int domain = 0;
  socklen_t len = sizeof domain;
  REQUIRE(::getsockopt(fd.get(), SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0);
  REQUIRE(domain == AF_VSOCK);
  sockaddr_vm addr{};
  len = sizeof addr;
  REQUIRE(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  REQUIRE(addr.svm_port == 41999u);
  int accepting = 0;
  len = sizeof accepting;
  REQUIRE(::getsockopt(fd.get(), SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) == 0);
  REQUIRE(accepting == 1);
}
