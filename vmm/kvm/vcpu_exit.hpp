#pragma once
// VcpuExit: why KVM_RUN returned, decoded from kvm_run into plain data so the exit handling
// above this layer can be unit-tested with scripted exits (no KVM, no <linux/kvm.h>).

#include <cstdint>
#include <span>
#include <string>

namespace frakti::vmm::kvm {

struct VcpuExit {
  enum class Kind {
    io_in,           ///< port read: fill data (size * count bytes)
    io_out,          ///< port write: data holds size * count bytes
    mmio_read,       ///< fill data (1..8 bytes) at addr
    mmio_write,      ///< data holds the bytes written at addr
    hlt,             ///< only without an in-kernel LAPIC
    shutdown,        ///< triple fault (or INIT with nothing to do)
    system_event,    ///< event_type: shutdown / reset / crash
    internal_error,  ///< KVM could not emulate something; detail says what
    fail_entry,      ///< hardware refused to enter the guest; detail says why
    interrupted,     ///< KVM_RUN returned EINTR (kick signal or immediate_exit)
    unknown,         ///< any other exit reason (detail names it)
  };
  /// SystemEvent types (values of KVM_SYSTEM_EVENT_*).
  enum class SystemEvent : uint32_t { shutdown = 1, reset = 2, crash = 3 };

  Kind kind = Kind::unknown;
  uint64_t addr = 0;          ///< port (io_*) or guest-physical address (mmio_*)
  uint32_t size = 0;          ///< bytes per access (io_*: 1, 2 or 4; mmio_*: data.size())
  uint32_t count = 0;         ///< io_*: number of repeated accesses (string I/O), else 1
  std::span<uint8_t> data;    ///< io_*: size * count bytes; mmio_*: size bytes (into kvm_run)
  uint32_t event_type = 0;    ///< system_event
  uint32_t reason = 0;        ///< raw KVM exit reason
  std::string detail;         ///< human-readable extra data for error exits
};

}  // namespace frakti::vmm::kvm
