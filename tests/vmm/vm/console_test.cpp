// The serial console's host side: a unix:PATH console serves one attached client at a time,
// both ways, and never lets a missing or slow client stall the guest.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <string>

#include <boost/asio/io_context.hpp>

#include "common/fd.hpp"
#include "vmm/devices/serial.hpp"
#include "vmm/vm/console.hpp"

using frakti::common::Fd;
using frakti::vmm::config::ConsoleConfig;
using frakti::vmm::vm::Console;
using namespace std::chrono_literals;

namespace {

struct NoIrq : frakti::vmm::irq::IrqLine {
  void trigger() override {}
};

Fd connect_to(const std::string& path) {
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, sizeof addr.sun_path - 1);
  REQUIRE(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  timeval tv{5, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

std::string read_some(const Fd& fd) {
  char buf[256];
  ssize_t n = ::read(fd.get(), buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

// What the guest would read from the UART's receive register.
std::string guest_reads(frakti::vmm::devices::Serial& uart) {
  auto reg = [&](uint64_t off) {
    uint8_t v = 0;
    uart.read(off, std::span<uint8_t>(&v, 1));
    return v;
  };
  std::string got;
  while (reg(5) & 0x01) got += static_cast<char>(reg(0));
  return got;
}


}  // namespace

TEST_CASE("unix console: one attached client gets output and types input", "[vm][console]") {
  char dir[] = "/tmp/frakti-console-XXXXXX";
  REQUIRE(::mkdtemp(dir));
  const std::string path = std::string(dir) + "/console.sock";
  boost::asio::io_context loop;
  NoIrq irq;
  auto console = std::make_unique<Console>(ConsoleConfig{ConsoleConfig::Kind::unix_socket, path});
  frakti::vmm::devices::Serial uart(irq, [&](std::span<const uint8_t> b) { console->write(b); });
  struct stat st;
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  console->start_input(loop, uart);

  // Output with nobody attached is dropped, not queued and not blocking.
  std::string early = "before anyone listened\n";
  console->write(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(early.data()), early.size()));

  Fd a = connect_to(path);
  loop.run_for(200ms);
  std::string hello = "guest says hi\n";
  console->write(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(hello.data()), hello.size()));
  CHECK(read_some(a) == hello);

  // The client's bytes become the guest's input.
  REQUIRE(::write(a.get(), "ls\n", 3) == 3);
  loop.run_for(200ms);
  CHECK(guest_reads(uart) == "ls\n");

  // A second client is told the console is busy and closed; the first stays attached.
  Fd b = connect_to(path);
  loop.run_for(200ms);
  CHECK_THAT(read_some(b), Catch::Contains("console is busy"));
  CHECK(read_some(b).empty());  // closed

  // When the first leaves, the next one may attach.
  a = Fd();
  loop.run_for(200ms);
  Fd c = connect_to(path);
  loop.run_for(200ms);
  console->write(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(hello.data()), hello.size()));
  CHECK(read_some(c) == hello);

  // A client that reads nothing never blocks the writer (the vCPU thread): output is dropped.
  std::string chunk(64 * 1024, 'x');
  for (int i = 0; i < 64; i++)
    console->write(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(chunk.data()), chunk.size()));

  console.reset();
  CHECK(::access(path.c_str(), F_OK) != 0);  // the socket file is removed
  std::system((std::string("rm -rf ") + dir).c_str());
}

TEST_CASE("unix console: a path that is not a socket is refused with its name", "[vm][console]") {
  char dir[] = "/tmp/frakti-console-XXXXXX";
  REQUIRE(::mkdtemp(dir));
  const std::string path = std::string(dir) + "/file";
  REQUIRE(std::system(("touch " + path).c_str()) == 0);
  try {
    Console c(ConsoleConfig{ConsoleConfig::Kind::unix_socket, path});
    FAIL("a regular file was replaced by the console socket");
  } catch (const std::system_error& e) {
    CHECK_THAT(e.what(), Catch::Contains(path));
  }
  std::system((std::string("rm -rf ") + dir).c_str());
}
