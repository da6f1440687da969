#include "vmm/vm/vm.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <fmt/ranges.h>

#include <boost/asio/post.hpp>
#include <pthread.h>
#include <signal.h>

#include <boost/asio/signal_set.hpp>
#include <stdexcept>

#include "common/error.hpp"
#include "common/guest_abi.hpp"
#include "common/log.hpp"
#include "vmm/arch/x86_64/boot_params.hpp"
#include "vmm/arch/x86_64/boot_tables.hpp"
#include "vmm/arch/x86_64/cpu_setup.hpp"
#include "vmm/arch/x86_64/cpuid.hpp"
#include "vmm/arch/x86_64/elf_loader.hpp"
#include "vmm/arch/x86_64/layout.hpp"
#include "vmm/arch/x86_64/memory_map.hpp"
#include "vmm/arch/x86_64/mptable.hpp"
#include "vmm/devices/boot_timer.hpp"
#include "vmm/devices/i8042.hpp"
#include "vmm/devices/quiet_ports.hpp"
#include "vmm/devices/serial.hpp"
#include "vmm/kvm/eventfd_irq_line.hpp"
#include "vmm/vcpu/exit_handler.hpp"
#include "vmm/seccomp/filters.hpp"
#include "vmm/vcpu/vcpu_thread.hpp"
#include "vmm/control/control_server.hpp"
#include "vmm/vm/console.hpp"
#include "vmm/vm/vm_control.hpp"
#include "vmm/virtio/net/net_backend.hpp"
#include "vmm/virtio/net/net_device.hpp"
#include "vmm/virtio/net/tap.hpp"
#include "vmm/virtio/blk/blk_device.hpp"
#include "vmm/virtio/mmio_transport.hpp"
#include "vmm/virtio/vsock/vsock_device.hpp"
#include "vmm/vm/kvm_exit_source.hpp"

namespace frakti::vmm::vm {

namespace x86 = arch::x86_64;
using vcpu::StopReason;

std::string MmioSlot::cmdline_entry() const {
  return fmt::format("virtio_mmio.device={}K@{:#x}:{}", x86::kVirtioMmioSize / 1024, base, gsi);
}

Vm::Vm(const config::VmConfig& config, Clock::time_point start) : config_(config), start_(start) {}

Vm::~Vm() {
  // The control server first: it may be running a command that calls into the VM.
  control_.reset();
  for (auto& t : threads_) t->request_stop();
  for (auto& t : threads_) t->join();
}

// The recipe. Each step needs the ones before it; comments say where order is forced.
std::unique_ptr<Vm> Vm::create(const config::VmConfig& config, Clock::time_point vmm_start) {
  std::unique_ptr<Vm> vm(new Vm(config, vmm_start));
  // 1. /dev/kvm, checked for API version and every capability we use.
  vm->kvm_.emplace(kvm::Kvm::open());
  // 2. The VM.
  vm->vm_.emplace(vm->kvm_->create_vm());
  // 3. TSS and identity-map pages (Intel needs them before the first vCPU runs; they sit in
  //    the MMIO hole, outside RAM).
  vm->vm_->set_identity_map_address(x86::kKvmIdentityMapAddr);
  vm->vm_->set_tss_address(x86::kKvmTssAddr);
  // 4. In-kernel PIC/IOAPIC/LAPICs: before any vCPU, or vCPUs get no in-kernel LAPIC.
  vm->vm_->create_irqchip();
  // 5. In-kernel PIT: after the irqchip it injects into.
  vm->vm_->create_pit2();
  // 6. Guest RAM and its memory slots.
  vm->memory_.emplace(memory::GuestMemory::allocate(
      x86::guest_ram_layout(config.memory_mib * x86::kMiB)));
  const auto& regions = vm->memory_->regions();
  for (uint32_t slot = 0; slot < regions.size(); slot++)
    vm->vm_->set_user_memory_region(slot, regions[slot].gpa, regions[slot].size,
                                    regions[slot].host);
  // 7. Devices, and virtio-mmio slots: before the command line, which announces them.
  vm->create_devices();
  // 8. Kernel, initrd, command line, zero page, MP table, GDT, page tables.
  vm->load_guest_images();
  // 9. vCPUs: CPUID before MSRs (MSR availability follows CPUID), LAPIC after both.
  vm->create_vcpus();
  // 10. The control socket, last: a client may act as soon as the socket exists.
  vm->create_control();
  common::log::debug("vmm", "VM built {} ms after the VMM started",
                     std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - vmm_start)
                         .count());
  return vm;
}

MmioSlot Vm::allocate_virtio_slot() {
  uint32_t i = static_cast<uint32_t>(virtio_slots_.size());
  if (i >= x86::kVirtioMaxDevices)
    throw std::invalid_argument(
        fmt::format("too many virtio devices (at most {})", x86::kVirtioMaxDevices));
  MmioSlot slot{x86::kVirtioMmioBase + i * x86::kVirtioMmioSize, x86::kVirtioFirstGsi + i};
  virtio_slots_.push_back(slot);
  return slot;
}

void Vm::create_devices() {
  devices::register_quiet_ports(pio_);

  console_ = std::make_unique<Console>(config_.console);
  auto serial_irq = std::make_shared<kvm::EventFdIrqLine>(*vm_, x86::kSerialGsi);
  serial_ = std::make_shared<devices::Serial>(
      *serial_irq, [this](std::span<const uint8_t> b) { console_->write(b); });
  // The serial device refers to its line; keep the line alive as long as the device.
  serial_irq_keepalive_ = serial_irq;
  pio_.insert(0x3f8, 8, serial_);

  keyboard_irq_ = std::make_shared<kvm::EventFdIrqLine>(*vm_, devices::I8042::kKeyboardIrq);
  i8042_ = std::make_shared<devices::I8042>([this] { request_stop(StopReason::reboot); },
                                            keyboard_irq_.get());
  pio_.insert(devices::I8042::kDataPort, 1, i8042_->data_port());
  pio_.insert(devices::I8042::kCommandPort, 1, i8042_->command_port());

  boot_timer_ = std::make_shared<devices::BootTimer>(start_);
  pio_.insert(guest_abi::kBootTimerPort, 1, boot_timer_);
  pio_.insert(guest_abi::kPowerOffPort, 1, std::make_shared<devices::PowerOffPort>(
                                               [this] { request_stop(StopReason::poweroff); }));

  // Virtio devices: slots are handed out in this order, so drive i is always slot i.
  for (const auto& d : config_.drives) {
    virtio::blk::BlkConfig bc;
    bc.path = d.path;
    bc.read_only = d.read_only;
    bc.serial = d.serial;
    auto drive = std::make_shared<virtio::blk::BlkDevice>(bc);
    drives_.push_back(drive);
    add_virtio_device(drive);
  }
  if (config_.vsock) {
    virtio::vsock::VsockConfig vc;
    vc.guest_cid = config_.vsock->guest_cid;
    vc.uds_path = config_.vsock->uds_path;
    add_virtio_device(std::make_shared<virtio::vsock::VsockDevice>(io_, vc));
  }
  for (const auto& n : config_.nets) {
    // The TAP must exist in (or be creatable in) our network namespace.
    auto backend = std::make_unique<virtio::net::FdNetBackend>(virtio::net::open_tap(n.tap));
    add_virtio_device(std::make_shared<virtio::net::NetDevice>(std::move(backend), n.mac));
    common::log::debug("vmm", "virtio-net on TAP {} mac {:02x}", n.tap, fmt::join(n.mac, ":"));
  }
}

void Vm::create_control() {
  if (!config_.control_path) return;
  control_handler_ = std::make_unique<VmControl>(*this);
  control_ = std::make_unique<control::ControlServer>(io_, *config_.control_path,
                                                      *control_handler_);
}

void Vm::add_virtio_device(std::shared_ptr<virtio::VirtioDevice> device) {
  MmioSlot slot = allocate_virtio_slot();
  auto irq = std::make_shared<kvm::EventFdIrqLine>(*vm_, slot.gsi);
  auto transport = std::make_shared<virtio::MmioTransport>(std::move(device), *memory_, irq, io_);
  mmio_.insert(slot.base, virtio::MmioTransport::kMmioSize, transport);
  // Queue notifications stay in the kernel: a guest write of queue index i to QueueNotify
  // signals that queue's eventfd, which the transport waits on in the loop.
  for (uint16_t q = 0; q < transport->num_queues(); q++)
    vm_->attach_ioeventfd(transport->queue_eventfd(q),
                          slot.base + virtio::MmioTransport::kQueueNotifyOffset, 4, false, q);
  transports_.push_back(std::move(transport));
}

void Vm::load_guest_images() {
  const auto& mem = *memory_;
  const uint64_t low_end = x86::low_ram_end(config_.memory_mib * x86::kMiB);

  auto kernel = x86::load_elf_kernel_file(config_.kernel, mem, low_end);
  kernel_entry_ = kernel.entry;

  common::Fd initrd(::open(config_.initrd.c_str(), O_RDONLY | O_CLOEXEC));
  if (!initrd) common::throw_errno(fmt::format("open initrd {}", config_.initrd));
  struct stat st;
  common::check(::fstat(initrd.get(), &st), "stat initrd {}", config_.initrd);
  const uint64_t initrd_size = static_cast<uint64_t>(st.st_size);
  uint64_t initrd_addr;
  try {
    initrd_addr = x86::initrd_address(initrd_size, kernel.high, low_end);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(fmt::format("initrd {}: {}", config_.initrd, e.what()));
  }
  auto dst = mem.translate(initrd_addr, initrd_size);
  if (!dst) throw std::logic_error("initrd placement outside guest RAM");
  common::read_exact(initrd.get(), *dst, initrd_size, config_.initrd.c_str());

  std::string cmdline = config_.base_cmdline();
  for (const auto& slot : virtio_slots_) cmdline += " " + slot.cmdline_entry();
  x86::write_cmdline(mem, cmdline);

  x86::BootParamsInput bp;
  bp.e820 = x86::e820_map(x86::guest_ram_layout(config_.memory_mib * x86::kMiB));
  bp.cmdline_addr = x86::kCmdlineAddr;
  bp.cmdline_size = static_cast<uint32_t>(cmdline.size() + 1);
  bp.initrd_addr = initrd_addr;
  bp.initrd_size = initrd_size;
  if (!mem.write(x86::kZeroPageAddr, x86::build_boot_params(bp)))
    throw std::logic_error("zero page outside guest RAM");
  x86::write_mp_table(mem, config_.cpus);
  x86::write_gdt(mem);
  x86::write_identity_page_tables(mem);

  common::log::debug("vmm", "kernel {:#x}-{:#x} entry {:#x}; initrd {:#x}+{:#x}; cmdline: {}",
                     kernel.low, kernel.high, kernel.entry, initrd_addr, initrd_size, cmdline);
}

void Vm::create_vcpus() {
  const auto supported = kvm_->supported_cpuid();
  const auto msrs = x86::boot_msrs();
  for (uint32_t i = 0; i < config_.cpus; i++) {
    auto v = std::make_unique<kvm::VcpuFd>(vm_->create_vcpu(i));
    v->set_cpuid(x86::vcpu_cpuid(supported, i, config_.cpus));
    v->set_msrs(msrs);
    // Only the boot vCPU starts in long mode at the kernel entry; the others wait in the
    // in-kernel LAPIC for the INIT/SIPI the guest sends, which resets them anyway.
    if (i == 0) {
      v->set_sregs(x86::boot_sregs(v->get_sregs()));
      v->set_regs(x86::boot_regs(kernel_entry_));
    }
    v->set_fpu(x86::boot_fpu());
    auto lapic = v->get_lapic();
    x86::set_lapic_lint(lapic);
    v->set_lapic(lapic);
    vcpus_.push_back(std::move(v));
  }
  handler_ = std::make_unique<vcpu::ExitHandler>(pio_, mmio_);
  for (auto& v : vcpus_) {
    sources_.push_back(std::make_unique<KvmExitSource>(*v));
    threads_.push_back(std::make_unique<vcpu::VcpuThread>(
        v->id(), *sources_.back(), *handler_, [this](StopReason r) { request_stop(r); }));
  }
}

void Vm::request_stop(StopReason reason) {
  int none = -1;
  if (!stop_reason_.compare_exchange_strong(none, static_cast<int>(reason))) return;
  common::log::info("vmm", "stopping the VM: {}", vcpu::to_string(reason));
  if (control_handler_) control_handler_->vm_stopping();
  // Kicking and stopping happen on the loop, never on the (possibly vCPU) caller's thread.
  boost::asio::post(io_, [this] {
    for (auto& t : threads_) t->request_stop();
    io_.stop();
  });
}

bool Vm::send_ctrl_alt_del() { return i8042_->send_ctrl_alt_del(); }

void Vm::pause() {
  // Devices first, vCPUs second (and the reverse on resume): a device timer may then run a
  // little long around a pause, but never expires while the guest cannot answer.
  for (auto& t : transports_) t->device().vm_paused();
  for (auto& t : threads_) t->pause();
}

void Vm::resume() {
  for (auto& t : threads_) t->resume();
  for (auto& t : transports_) t->device().vm_resumed();
}

std::optional<std::chrono::microseconds> Vm::boot_time() const { return boot_timer_->boot_time(); }

StopReason Vm::run() {
  vcpu::install_kick_signal();
  boost::asio::signal_set signals(io_, SIGINT, SIGTERM);
  signals.async_wait([this](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    common::log::info("vmm", "signal {}: stopping the VM", sig);
    request_stop(StopReason::host_stop);
  });
  console_->start_input(io_, *serial_);
  auto work = boost::asio::make_work_guard(io_);
  for (auto& t : threads_) t->start();
  // After the vCPU and control threads exist (threads inherit a filter), before the loop runs
  // its first handler.
  seccomp::install_configured_filter(seccomp::Role::event_loop);
  // main() blocked SIGINT/SIGTERM so that one arriving during start-up waits; the handler is
  // installed now, and only this thread unblocks them (the others keep the inherited block).
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_UNBLOCK, &stop_signals, nullptr);
  // Event-loop handlers that throw are VMM failures: stop the VM, keep the loop draining.
  for (;;) {
    try {
      io_.run();
      break;
    } catch (const std::exception& e) {
      common::log::error("vmm", "event loop: {}", e.what());
      request_stop(StopReason::vmm_error);
    }
  }
  for (auto& t : threads_) t->join();
  if (handler_->unclaimed_pio() || handler_->unclaimed_mmio())
    common::log::debug("vmm", "unclaimed accesses: {} port, {} MMIO", handler_->unclaimed_pio(),
                       handler_->unclaimed_mmio());
  int r = stop_reason_.load();
  return r < 0 ? StopReason::vmm_error : static_cast<StopReason>(r);
}

}  // namespace frakti::vmm::vm
