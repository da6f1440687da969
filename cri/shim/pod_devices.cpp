// PodVm: host block devices in VM pods (CRI Devices). Each device goes to one of the VM's
// read-write device slots (a virtio-blk drive with no media until now) under a serial that
// names the container, and the agent bind-mounts the guest's device node for that serial at
// the container path (a "blockdev" mount). Character devices cannot cross into a VM; the CRI
// server refuses them before a request gets here.

#include <fmt/format.h>

#include "common/log.hpp"
#include "cri/shim/pod_entry.hpp"
#include "cri/shim/pod_vm.hpp"

namespace frakti::cri::shim {

using Kind = ShimError::Kind;

std::vector<uint32_t> PodVm::attach_devices(const sv1::CreateContainerRequest& req, v1::CreateContainerRequest& create) {
  const std::string& id = req.container().container_id();
  std::vector<uint32_t> taken;
  try {
    for (int i = 0; i < req.devices_size(); ++i) {
      const auto& d = req.devices(i);
      std::lock_guard control(control_mu_);
      size_t index = device_slots_.size();
      {
        std::lock_guard lock(mu_);
        for (size_t s = 0; s < device_slots_.size() && index == device_slots_.size(); ++s)
          if (device_slots_[s].empty()) index = s;
        if (index == device_slots_.size())
          throw ShimError(Kind::precondition,
                          fmt::format("device {}: the pod VM has no free device slot (it has {}, all in use); "
                                      "pass fewer block devices to this pod's containers",
                                      d.host_path(), device_slots_.size()));
        device_slots_[index] = id;
      }
      uint32_t slot = opts_.drive_slots + static_cast<uint32_t>(index);
      // At most 20 bytes (virtio-blk's ID field): "dev-" + 12 hex digits of the id + "-" + index.
      std::string serial = fmt::format("dev-{}-{}", id.substr(0, 12), i);
      try {
        control_->set_drive(slot, d.host_path(), !d.writable(), serial);
      } catch (const std::exception& e) {
        std::lock_guard lock(mu_);
        device_slots_[index].clear();
        throw ShimError(Kind::invalid, fmt::format("device {}: attaching it to the pod VM: {}", d.host_path(), e.what()));
      }
      taken.push_back(slot);
      auto* m = create.add_mounts();
      m->set_destination(d.container_path());
      m->set_type("blockdev");
      m->set_drive_serial(serial);
      if (!d.writable()) m->add_options("ro");
      common::log::info("shim", "container {}: device {} is {} in the VM (slot {})", id, d.host_path(), serial, slot);
    }
  } catch (...) {
    release_devices(taken);
    throw;
  }
  return taken;
}

void PodVm::release_devices(const std::vector<uint32_t>& slots) {
  for (uint32_t slot : slots) {
    std::lock_guard control(control_mu_);
    try {
      control_->set_drive(slot, std::nullopt, false, "");
    } catch (const std::exception& e) {
      common::log::warn("shim", "ejecting device slot {}: {}", slot, e.what());
    }
    std::lock_guard lock(mu_);
    device_slots_.at(slot - opts_.drive_slots).clear();
  }
}

}  // namespace frakti::cri::shim
