#pragma once
// Vm: one micro-VM, built by a single recipe (Vm::create in vm.cpp, steps in order) and run
// as one event-loop thread (the caller of run(), Boost.Asio) plus one thread per vCPU.
//
// Threads and ownership: vCPU threads only touch the buses' devices (which lock themselves)
// and request_stop(); everything else belongs to the event loop. Stopping: the first
// request_stop() wins, the loop kicks every vCPU out of the guest, joins them and returns.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "vmm/bus/bus.hpp"
#include "vmm/irq/irq_line.hpp"
#include "vmm/config/vm_config.hpp"
#include "vmm/kvm/kvm_system.hpp"
#include "vmm/memory/guest_memory.hpp"
#include "vmm/vcpu/stop_reason.hpp"

namespace frakti::vmm::devices {
class BootTimer;
class Serial;
class I8042;
}  // namespace frakti::vmm::devices
namespace frakti::vmm::virtio {
class MmioTransport;
class VirtioDevice;
namespace blk {
class BlkDevice;
}
}  // namespace frakti::vmm::virtio
namespace frakti::vmm::control {
class ControlServer;
}
namespace frakti::vmm::vcpu {
class ExitHandler;
class VcpuThread;
}  // namespace frakti::vmm::vcpu

namespace frakti::vmm::vm {

class Console;
class KvmExitSource;
class VmControl;

/// One virtio-mmio device's place in the guest: its register window and its interrupt.
struct MmioSlot {
  uint64_t base = 0;
  uint32_t gsi = 0;
  /// The kernel parameter announcing it ("virtio_mmio.device=4K@0xd0000000:5").
  std::string cmdline_entry() const;
};

class Vm {
 public:
  using Clock = std::chrono::steady_clock;

  /// Builds the VM (see the recipe in vm.cpp). vmm_start is when the process started, for the
  /// boot timer. Throws std::system_error / std::invalid_argument naming what failed.
  static std::unique_ptr<Vm> create(const config::VmConfig& config, Clock::time_point vmm_start);
  ~Vm();
  Vm(const Vm&) = delete;
  Vm& operator=(const Vm&) = delete;

  /// Starts the vCPUs and runs the event loop on the calling thread until the VM stops.
  vcpu::StopReason run();
  /// Parks every vCPU outside the guest; returns once all are parked. Not from a vCPU thread.
  /// The virtio devices hear of it first (VirtioDevice::vm_paused) to stop guest timeouts.
  void pause();
  /// Lets paused vCPUs run again, then tells the virtio devices (vm_resumed).
  void resume();
  /// Asks the VM to stop; thread-safe, the first reason wins.
  void request_stop(vcpu::StopReason reason);
  /// Asks the guest to shut down: types Ctrl-Alt-Del on the i8042 keyboard. False when the
  /// guest has no keyboard driver listening. Any thread.
  bool send_ctrl_alt_del();

  boost::asio::io_context& io() { return io_; }
  const config::VmConfig& config() const { return config_; }
  /// When the VMM process started (uptime and boot time count from here).
  Clock::time_point start_time() const { return start_; }
  const memory::GuestMemory& memory() const { return *memory_; }
  kvm::VmFd& vm_fd() { return *vm_; }
  bus::Bus& mmio_bus() { return mmio_; }
  /// The virtio-blk drives, in --drive order (the control socket swaps their backing).
  const std::vector<std::shared_ptr<virtio::blk::BlkDevice>>& drives() const { return drives_; }
  /// The guest's boot time once its init signalled readiness.
  std::optional<std::chrono::microseconds> boot_time() const;

 private:
  explicit Vm(const config::VmConfig& config, Clock::time_point start);
  /// Reserves the next virtio-mmio window and GSI (before the command line is written).
  MmioSlot allocate_virtio_slot();
  /// Puts device behind a virtio-mmio transport in the next slot: MMIO window, irqfd on the
  /// slot's GSI, one ioeventfd per queue on QueueNotify (datamatch = queue index).
  void add_virtio_device(std::shared_ptr<virtio::VirtioDevice> device);
  void create_devices();
  void load_guest_images();
  void create_vcpus();
  /// The control socket (--control): after the devices, whose drive slots it swaps.
  void create_control();

  // Declaration order is teardown order reversed: threads go first, the io_context last.
  config::VmConfig config_;
  Clock::time_point start_;
  boost::asio::io_context io_;
  std::optional<kvm::Kvm> kvm_;
  std::optional<kvm::VmFd> vm_;
  std::optional<memory::GuestMemory> memory_;
  bus::Bus pio_{"pio"};
  bus::Bus mmio_{"mmio"};
  std::unique_ptr<Console> console_;
  std::shared_ptr<irq::IrqLine> serial_irq_keepalive_;
  std::shared_ptr<devices::Serial> serial_;
  std::shared_ptr<irq::IrqLine> keyboard_irq_;
  std::shared_ptr<devices::I8042> i8042_;
  std::shared_ptr<devices::BootTimer> boot_timer_;
  std::vector<MmioSlot> virtio_slots_;
  // After memory_ and io_ (transports use both), before the vCPU threads.
  std::vector<std::shared_ptr<virtio::MmioTransport>> transports_;
  std::vector<std::shared_ptr<virtio::blk::BlkDevice>> drives_;
  uint64_t kernel_entry_ = 0;
  std::vector<std::unique_ptr<kvm::VcpuFd>> vcpus_;
  std::vector<std::unique_ptr<KvmExitSource>> sources_;
  std::unique_ptr<vcpu::ExitHandler> handler_;
  std::vector<std::unique_ptr<vcpu::VcpuThread>> threads_;
  std::atomic<int> stop_reason_{-1};
  // Last: destroyed first, while everything the handler touches still exists. The server
  // goes before its handler.
  std::unique_ptr<VmControl> control_handler_;
  std::unique_ptr<control::ControlServer> control_;
};

}  // namespace frakti::vmm::vm
