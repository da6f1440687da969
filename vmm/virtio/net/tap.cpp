#include "vmm/virtio/net/tap.hpp"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>

#include <cstring>

#include "common/error.hpp"

namespace frakti::vmm::virtio::net {

common::Fd open_tap(const std::string& name) {
  if (name.empty() || name.size() >= IFNAMSIZ)
    common::throw_error(
        EINVAL, fmt::format("TAP device name '{}' must be 1-{} characters", name, IFNAMSIZ - 1));
  int raw = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
  common::check(raw, "open /dev/net/tun for TAP {} (is the tun module available?)", name);
  common::Fd fd(raw);
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, name.c_str(), name.size());
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  common::check(ioctl(fd.get(), TUNSETIFF, &ifr),
                "TUNSETIFF on TAP {} (needs CAP_NET_ADMIN, or the TAP must be owned by us)", name);
  return adopt_tap(std::move(fd));
}

common::Fd adopt_tap(common::Fd fd) {
  int hdr = static_cast<int>(kVnetHdrSize);
  common::check(ioctl(fd.get(), TUNSETVNETHDRSZ, &hdr), "TUNSETVNETHDRSZ on TAP fd {}", fd.get());
  int flags = common::check(fcntl(fd.get(), F_GETFL), "F_GETFL on TAP fd {}", fd.get());
  common::check(fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK), "set O_NONBLOCK on TAP fd {}",
                fd.get());
  return fd;
}

}  // namespace frakti::vmm::virtio::net
