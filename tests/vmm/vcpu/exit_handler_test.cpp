// Exit dispatch driven by scripted exits: no KVM involved.
#include <catch2/catch.hpp>
#include <memory>

#include "vmm/vcpu/exit_handler.hpp"

using namespace frakti::vmm;
using Kind = kvm::VcpuExit::Kind;

namespace {
struct Recorder : bus::BusDevice {
  std::vector<std::pair<uint64_t, std::vector<uint8_t>>> writes;
  uint8_t next_read = 0x40;
  void read(uint64_t, std::span<uint8_t> d) override {
    for (auto& b : d) b = next_read++;
  }
  void write(uint64_t off, std::span<const uint8_t> d) override {
    writes.emplace_back(off, std::vector<uint8_t>(d.begin(), d.end()));
  }
};

struct Fixture {
  bus::Bus pio{"pio"};
  bus::Bus mmio{"mmio"};
  std::shared_ptr<Recorder> port = std::make_shared<Recorder>();
  std::shared_ptr<Recorder> mem = std::make_shared<Recorder>();
  vcpu::ExitHandler handler{pio, mmio};
  Fixture() {
    pio.insert(0x3f8, 8, port);
    mmio.insert(0xd0000000, 0x1000, mem);
  }
};

kvm::VcpuExit io(Kind k, uint16_t port, uint32_t size, uint32_t count, std::span<uint8_t> data) {
  kvm::VcpuExit e;
  e.kind = k;
  e.addr = port;
  e.size = size;
  e.count = count;
  e.data = data;
  return e;
}
}  // namespace

TEST_CASE("port writes reach the device at the right offset", "[vcpu]") {
  Fixture f;
  uint8_t b[1] = {'A'};
  auto e = io(Kind::io_out, 0x3f8, 1, 1, b);
  REQUIRE_FALSE(f.handler.handle(0, e));
  REQUIRE(f.port->writes.size() == 1);
  REQUIRE(f.port->writes[0].first == 0);
  REQUIRE(f.port->writes[0].second == std::vector<uint8_t>{'A'});
}

TEST_CASE("port reads fill the exit's data", "[vcpu]") {
  Fixture f;
  uint8_t b[1] = {0};
  auto e = io(Kind::io_in, 0x3fd, 1, 1, b);
  REQUIRE_FALSE(f.handler.handle(0, e));
  REQUIRE(b[0] == 0x40);
}

TEST_CASE("string I/O is split into count accesses", "[vcpu]") {
  Fixture f;
  uint8_t out[3] = {'x', 'y', 'z'};
  auto e = io(Kind::io_out, 0x3f8, 1, 3, out);
  REQUIRE_FALSE(f.handler.handle(0, e));
  REQUIRE(f.port->writes.size() == 3);
  REQUIRE(f.port->writes[2].second == std::vector<uint8_t>{'z'});
  uint8_t in[4] = {};
  auto r = io(Kind::io_in, 0x3f8, 2, 2, in);
  REQUIRE_FALSE(f.handler.handle(0, r));
  REQUIRE(in[0] == 0x40);
  REQUIRE(in[3] == 0x43);
}

TEST_CASE("unclaimed accesses read as all ones and are counted", "[vcpu]") {
  Fixture f;
  uint8_t b[2] = {0, 0};
  auto e = io(Kind::io_in, 0x1234, 2, 1, b);
  REQUIRE_FALSE(f.handler.handle(0, e));
  REQUIRE(b[0] == 0xff);
  REQUIRE(b[1] == 0xff);
  auto w = io(Kind::io_out, 0x1234, 2, 1, b);
  REQUIRE_FALSE(f.handler.handle(0, w));
  REQUIRE(f.handler.unclaimed_pio() == 2);
  uint8_t m[4] = {};
  kvm::VcpuExit mr;
  mr.kind = Kind::mmio_read;
  mr.addr = 0xc0000000;
  mr.size = 4;
  mr.data = m;
  REQUIRE_FALSE(f.handler.handle(0, mr));
  REQUIRE(m[3] == 0xff);
  REQUIRE(f.handler.unclaimed_mmio() == 1);
  // A straddling port access is unclaimed rather than half-delivered.
  auto straddle = io(Kind::io_out, 0x3ff, 2, 1, b);
  REQUIRE_FALSE(f.handler.handle(0, straddle));
  REQUIRE(f.port->writes.empty());
}

TEST_CASE("a flood of unclaimed accesses is handled without growing anything", "[vcpu]") {
  Fixture f;
  uint8_t b[1] = {0};
  for (int i = 0; i < 5000; i++) {
    auto e = io(Kind::io_out, 0x9999, 1, 1, b);
    REQUIRE_FALSE(f.handler.handle(0, e));
  }
  REQUIRE(f.handler.unclaimed_pio() == 5000);
}

TEST_CASE("MMIO reads and writes reach the device", "[vcpu]") {
  Fixture f;
  uint8_t v[4] = {1, 2, 3, 4};
  kvm::VcpuExit w;
  w.kind = Kind::mmio_write;
  w.addr = 0xd0000070;
  w.size = 4;
  w.data = v;
  REQUIRE_FALSE(f.handler.handle(1, w));
  REQUIRE(f.mem->writes.at(0).first == 0x70);
  REQUIRE(f.mem->writes.at(0).second == std::vector<uint8_t>{1, 2, 3, 4});
  kvm::VcpuExit r = w;
  r.kind = Kind::mmio_read;
  REQUIRE_FALSE(f.handler.handle(1, r));
  REQUIRE(v[0] == 0x40);
}

TEST_CASE("exits that end the VM map to the right stop reason", "[vcpu]") {
  Fixture f;
  auto reason = [&](Kind k, uint32_t event = 0) {
    kvm::VcpuExit e;
    e.kind = k;
    e.event_type = event;
    e.detail = "scripted";
    return f.handler.handle(0, e);
  };
  REQUIRE(reason(Kind::hlt) == vcpu::StopReason::poweroff);
  REQUIRE(reason(Kind::shutdown) == vcpu::StopReason::crash);
  REQUIRE(reason(Kind::system_event, 1) == vcpu::StopReason::poweroff);
  REQUIRE(reason(Kind::system_event, 2) == vcpu::StopReason::reboot);
  REQUIRE(reason(Kind::system_event, 3) == vcpu::StopReason::crash);
  REQUIRE(reason(Kind::system_event, 77) == vcpu::StopReason::crash);
  REQUIRE(reason(Kind::internal_error) == vcpu::StopReason::crash);
  REQUIRE(reason(Kind::fail_entry) == vcpu::StopReason::crash);
  REQUIRE(reason(Kind::unknown) == vcpu::StopReason::crash);
  REQUIRE_FALSE(reason(Kind::interrupted));
}

TEST_CASE("stop reasons map to documented exit statuses", "[vcpu]") {
  REQUIRE(vcpu::exit_status(vcpu::StopReason::poweroff) == 0);
  REQUIRE(vcpu::exit_status(vcpu::StopReason::host_stop) == 0);
  REQUIRE(vcpu::exit_status(vcpu::StopReason::vmm_error) == 1);
  REQUIRE(vcpu::exit_status(vcpu::StopReason::reboot) == 2);
  REQUIRE(vcpu::exit_status(vcpu::StopReason::crash) == 3);
}
