#pragma once
// Opening the host side of a guest NIC: a TAP device that carries virtio_net_hdr_v1-prefixed
// frames, so the virtio-net device can move frames between TAP and guest memory untouched.

#include <string>

#include "common/fd.hpp"

namespace frakti::vmm::virtio::net {

/// Size of struct virtio_net_hdr_v1 (flags, gso_type, hdr_len, gso_size, csum_start,
/// csum_offset, num_buffers).
inline constexpr size_t kVnetHdrSize = 12;

/// Opens /dev/net/tun and attaches to (or creates) TAP device `name` with IFF_TAP | IFF_NO_PI
/// | IFF_VNET_HDR, a 12-byte vnet header and O_NONBLOCK. Needs CAP_NET_ADMIN (or a TAP the
/// caller owns). Throws std::system_error naming the device.
common::Fd open_tap(const std::string& name);

/// Prepares a TAP fd someone else opened with IFF_VNET_HDR (for example passed in by the
/// runtime): sets the 12-byte vnet header size and O_NONBLOCK. Throws std::system_error.
common::Fd adopt_tap(common::Fd fd);

}  // namespace frakti::vmm::virtio::net
