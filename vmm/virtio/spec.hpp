#pragma once
// Numbers from the virtio 1.2 specification that the transport, the queue and several devices
// share. Device-specific numbers live with their device (blk/, net/, vsock/).

#include <cstdint>

namespace frakti::vmm::virtio {

/// Device type ids (virtio 1.2 section 5).
namespace device_type {
inline constexpr uint32_t kNet = 1;
inline constexpr uint32_t kBlock = 2;
inline constexpr uint32_t kVsock = 19;
}  // namespace device_type

/// Feature bits that are not device-specific (bit numbers, not masks).
namespace feature {
inline constexpr unsigned kRingIndirectDesc = 28;  ///< VIRTIO_RING_F_INDIRECT_DESC
inline constexpr unsigned kRingEventIdx = 29;      ///< VIRTIO_RING_F_EVENT_IDX
inline constexpr unsigned kVersion1 = 32;          ///< VIRTIO_F_VERSION_1 (modern device)
}  // namespace feature

/// Mask for one feature bit number.
constexpr uint64_t feature_bit(unsigned bit) {
  return uint64_t{1} << bit;
}

/// Device status bits (section 2.1).
namespace status {
inline constexpr uint32_t kAcknowledge = 1;
inline constexpr uint32_t kDriver = 2;
inline constexpr uint32_t kDriverOk = 4;
inline constexpr uint32_t kFeaturesOk = 8;
inline constexpr uint32_t kDeviceNeedsReset = 64;
inline constexpr uint32_t kFailed = 128;
}  // namespace status

/// InterruptStatus bits of virtio-mmio (section 4.2.2).
namespace interrupt_bit {
inline constexpr uint32_t kUsedBuffer = 1;
inline constexpr uint32_t kConfigChange = 2;
}  // namespace interrupt_bit

/// Split-ring layout (section 2.7).
namespace ring {
inline constexpr uint16_t kDescFNext = 1;
inline constexpr uint16_t kDescFWrite = 2;
inline constexpr uint16_t kDescFIndirect = 4;
inline constexpr uint16_t kAvailFNoInterrupt = 1;
inline constexpr uint16_t kUsedFNoNotify = 1;
inline constexpr uint64_t kDescSize = 16;
inline constexpr uint64_t kUsedElemSize = 8;
inline constexpr uint64_t kDescAlign = 16;
inline constexpr uint64_t kAvailAlign = 2;
inline constexpr uint64_t kUsedAlign = 4;
/// The largest queue size the split ring allows.
inline constexpr uint16_t kMaxQueueSize = 32768;
}  // namespace ring

}  // namespace frakti::vmm::virtio
