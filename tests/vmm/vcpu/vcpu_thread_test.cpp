// The vCPU loop with scripted exits, and pause/resume/stop through immediate_exit and the
// real kick signal (the fake KVM_RUN sleeps in nanosleep, which the signal interrupts the way
// it interrupts KVM_RUN).
#include <poll.h>
#include <signal.h>
#include <time.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <deque>
#include <memory>
#include <stdexcept>

#include "vmm/vcpu/vcpu_thread.hpp"

using namespace frakti::vmm;
using Kind = kvm::VcpuExit::Kind;
using namespace std::chrono_literals;

namespace {

struct Sink : bus::BusDevice {
  std::atomic<int> writes{0};
  void read(uint64_t, std::span<uint8_t>) override {}
  void write(uint64_t, std::span<const uint8_t>) override { writes++; }
};

// Replays a fixed list of exits.
struct Script : vcpu::ExitSource {
  std::deque<kvm::VcpuExit> exits;
  uint8_t byte = 0;
  kvm::VcpuExit run() override {
    if (exits.empty()) throw std::runtime_error("script ran out");
    auto e = exits.front();
    exits.pop_front();
    if (e.kind == Kind::io_out) e.data = std::span<uint8_t>(&byte, 1);
    return e;
  }
  void set_immediate_exit(bool) override {}
};

// Behaves like KVM_RUN on a guest spinning on port writes: returns an io_out exit after a
// long "guest run", or Kind::interrupted when immediate_exit is set or a signal arrives. Like
// KVM, it only lets the kick signal in while "in the guest" (ppoll's atomic mask swap), so a
// kick sent between the immediate_exit check and the sleep is not lost.
struct Spinner : vcpu::ExitSource {
  std::atomic<bool> immediate{false};
  std::atomic<int> runs{0};
  uint8_t byte = 0;
  kvm::VcpuExit run() override {
    kvm::VcpuExit e;
    sigset_t block, in_guest;
    sigemptyset(&block);
    sigaddset(&block, vcpu::kick_signal());
    pthread_sigmask(SIG_BLOCK, &block, &in_guest);
    sigdelset(&in_guest, vcpu::kick_signal());
    if (immediate.load()) {
      e.kind = Kind::interrupted;
      return e;
    }
    runs++;
    // Long enough that a missing kick would make the test's timing checks fail.
    timespec ts{30, 0};
    if (ppoll(nullptr, 0, &ts, &in_guest) < 0) {
      e.kind = Kind::interrupted;
      return e;
    }
    e.kind = Kind::io_out;
    e.addr = 0x80;
    e.size = 1;
    e.count = 1;
    e.data = std::span<uint8_t>(&byte, 1);
    return e;
  }
  void set_immediate_exit(bool on) override { immediate = on; }
};

kvm::VcpuExit make(Kind k) {
  kvm::VcpuExit e;
  e.kind = k;
  e.addr = 0x80;
  e.size = 1;
  e.count = 1;
  return e;
}

}  // namespace

TEST_CASE("run loop handles exits until one ends the VM", "[vcpu][loop]") {
  bus::Bus pio("pio"), mmio("mmio");
  auto sink = std::make_shared<Sink>();
  pio.insert(0x80, 1, sink);
  vcpu::ExitHandler handler(pio, mmio);
  Script s;
  s.exits = {make(Kind::io_out), make(Kind::interrupted), make(Kind::io_out), make(Kind::hlt),
             make(Kind::io_out)};
  vcpu::VcpuThread t(0, s, handler, {});
  REQUIRE(t.run_loop() == vcpu::StopReason::poweroff);
  REQUIRE(sink->writes == 2);
  REQUIRE(s.exits.size() == 1);  // nothing after the HLT ran
  REQUIRE(t.stop_reason() == vcpu::StopReason::poweroff);
}

TEST_CASE("a failing source ends the loop as a VMM error", "[vcpu][loop]") {
  bus::Bus pio("pio"), mmio("mmio");
  vcpu::ExitHandler handler(pio, mmio);
  Script s;  // empty: throws
  vcpu::VcpuThread t(3, s, handler, {});
  REQUIRE(t.run_loop() == vcpu::StopReason::vmm_error);
}

TEST_CASE("pause, resume and stop a running vCPU thread", "[vcpu][loop]") {
  bus::Bus pio("pio"), mmio("mmio");
  pio.insert(0x80, 1, std::make_shared<Sink>());
  vcpu::ExitHandler handler(pio, mmio);
  Spinner s;
  std::atomic<int> stops{0};
  std::atomic<int> reason{-1};
  vcpu::VcpuThread t(0, s, handler, [&](vcpu::StopReason r) {
    stops++;
    reason = static_cast<int>(r);
  });
  t.start();
  while (s.runs.load() == 0) std::this_thread::sleep_for(1ms);

  auto t0 = std::chrono::steady_clock::now();
  t.pause();  // must interrupt the 30 s "KVM_RUN" via the kick signal
  REQUIRE(std::chrono::steady_clock::now() - t0 < 5s);
  int runs_paused = s.runs.load();
  std::this_thread::sleep_for(50ms);
  REQUIRE(s.runs.load() == runs_paused);  // parked: no guest execution
  REQUIRE_FALSE(s.immediate.load());       // cleared before parking

  t.resume();
  while (s.runs.load() == runs_paused) std::this_thread::sleep_for(1ms);

  t0 = std::chrono::steady_clock::now();
  t.request_stop();
  t.join();
  REQUIRE(std::chrono::steady_clock::now() - t0 < 5s);
  REQUIRE(stops == 1);
  REQUIRE(reason == static_cast<int>(vcpu::StopReason::host_stop));
}

TEST_CASE("stop while paused ends the loop", "[vcpu][loop]") {
  bus::Bus pio("pio"), mmio("mmio");
  vcpu::ExitHandler handler(pio, mmio);
  Spinner s;
  vcpu::VcpuThread t(1, s, handler, {});
  t.start();
  while (s.runs.load() == 0) std::this_thread::sleep_for(1ms);
  t.pause();
  t.request_stop();
  t.join();
  REQUIRE(t.stop_reason() == vcpu::StopReason::host_stop);
}
