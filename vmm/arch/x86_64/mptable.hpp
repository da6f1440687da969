#pragma once
// The Intel MultiProcessor Specification 1.4 tables: without ACPI this is how Linux learns
// about the vCPUs, the IOAPIC and how ISA IRQs reach it. Without it Linux stays on the
// legacy PIC (and froze after "Run /init" in our probe); with it every vCPU is brought up.

#include <cstdint>
#include <vector>

#include "vmm/memory/guest_memory.hpp"

namespace frakti::vmm::arch::x86_64 {

/// IOAPIC id used in the table (above every LAPIC id, as Firecracker does).
uint8_t mp_ioapic_id(uint32_t cpu_count);

/// The floating pointer plus configuration table as they will sit at base_addr:
/// processor entries (APIC id = index, 0 is the BSP), one ISA bus, one IOAPIC at kIoapicAddr,
/// an I/O interrupt entry for each of its pins (ISA IRQ n -> pin n), LINT0 = ExtINT,
/// LINT1 = NMI. Throws std::invalid_argument for cpu_count outside 1..kMaxVcpus.
std::vector<uint8_t> build_mp_table(uint32_t cpu_count, uint64_t base_addr);

/// Writes build_mp_table(cpu_count, kMpTableAddr) into guest memory.
void write_mp_table(const memory::GuestMemory& mem, uint32_t cpu_count);

}  // namespace frakti::vmm::arch::x86_64
