#include "agent/container/drives.hpp"

#include <dirent.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <stdexcept>
#include <thread>

#include "agent/agent_error.hpp"
#include "agent/container/spec.hpp"
#include "agent/sys/files.hpp"
#include "agent/sys/mount.hpp"
#include "common/log.hpp"

namespace frakti::agent::container {

namespace {
constexpr const char* kLog = "agent-drives";

void check_serial(const std::string& serial) {
  if (!valid_serial(serial))
    invalid_argument("drive serial '{}' is not a virtio-blk serial (1-20 of [A-Za-z0-9_.-])",
                     serial);
}
}  // namespace

std::string find_block_device(const std::string& sys_block, const std::string& dev_dir,
                              const std::string& serial) {
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(sys_block.c_str()), ::closedir);
  if (!dir) return {};
  while (dirent* e = ::readdir(dir.get())) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string base = sys_block + "/" + name;
    auto s = sys::try_read_file(base + "/serial", 4096);
    if (!s || sys::trim_right(*s) != serial) continue;
    // A reserved slot reports its serial before the VMM swaps media in; size (in 512-byte
    // sectors) turns non-zero with the config-change interrupt.
    auto size = sys::try_read_file(base + "/size", 4096);
    if (!size || sys::trim_right(*size).empty() || sys::trim_right(*size) == "0") continue;
    return dev_dir + "/" + name;
  }
  return {};
}

BlockDrives::BlockDrives(std::string sys_block, std::string dev_dir, std::string mount_base)
    : sys_block_(std::move(sys_block)),
      dev_dir_(std::move(dev_dir)),
      mount_base_(std::move(mount_base)) {}

AttachedDrive BlockDrives::attach(const std::string& serial, const std::string& fs_type,
                                  bool read_only, const std::string& options,
                                  const std::string& mount_point,
                                  std::chrono::steady_clock::time_point deadline) {
  check_serial(serial);
  if (auto it = attached_.find(serial); it != attached_.end()) return it->second;
  std::string device = wait_for_device(serial, deadline);
  AttachedDrive drive{device, mount_point.empty() ? mount_base_ + "/" + serial : mount_point};
  sys::make_dirs(drive.mount_point);
  unsigned long flags = MS_NODEV | MS_NOSUID | (read_only ? MS_RDONLY : 0);
  sys::mount(device, drive.mount_point, fs_type, flags, options);
  common::log::info(kLog, "drive {} ({}) mounted on {}", serial, device, drive.mount_point);
  attached_[serial] = drive;
  return drive;
}

std::string BlockDrives::wait_for_device(const std::string& serial,
                                         std::chrono::steady_clock::time_point deadline) const {
  for (;;) {
    std::string device = find_block_device(sys_block_, dev_dir_, serial);
    if (!device.empty()) return device;
    if (std::chrono::steady_clock::now() >= deadline) {
      throw AgentError(v1::Error::CODE_NOT_FOUND,
                       fmt::format("no virtio-blk drive with serial '{}' and media appeared in {} "
                                   "(was it attached to the VM?)",
                                   serial, sys_block_));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::string BlockDrives::device_node(const std::string& serial,
                                     std::chrono::steady_clock::time_point deadline) {
  check_serial(serial);
  return wait_for_device(serial, deadline);
}

void BlockDrives::detach(const std::string& serial) {
  auto it = attached_.find(serial);
  if (it == attached_.end())
    throw AgentError(v1::Error::CODE_NOT_FOUND, fmt::format("drive '{}' is not mounted", serial));
  sys::umount(it->second.mount_point, 0, true);
  attached_.erase(it);
}

void BlockDrives::detach_all() {
  for (auto& [serial, drive] : attached_) {
    try {
      sys::umount(drive.mount_point, MNT_DETACH, true);
    } catch (const std::exception& e) {
      common::log::warn(kLog, "{}", e.what());
    }
  }
  attached_.clear();
}

std::string DirectoryDrives::device_node(const std::string& serial,
                                         std::chrono::steady_clock::time_point) {
  check_serial(serial);
  std::string path = base_ + "/" + serial;
  struct stat st {};
  if (::lstat(path.c_str(), &st) < 0 || S_ISDIR(st.st_mode) || S_ISLNK(st.st_mode)) {
    throw AgentError(
        v1::Error::CODE_NOT_FOUND,
        fmt::format("no device with serial '{}' (host test mode looks for the file {})", serial,
                    path));
  }
  return path;
}

AttachedDrive DirectoryDrives::attach(const std::string& serial, const std::string&, bool,
                                      const std::string&, const std::string&,
                                      std::chrono::steady_clock::time_point) {
  check_serial(serial);
  std::string dir = base_ + "/" + serial;
  struct stat st {};
  if (::stat(dir.c_str(), &st) < 0 || !S_ISDIR(st.st_mode)) {
    throw AgentError(
        v1::Error::CODE_NOT_FOUND,
        fmt::format("no drive with serial '{}' (host test mode looks for the directory {})", serial,
                    dir));
  }
  return {dir, dir};
}

std::unique_ptr<Drives> make_drives(const std::string& spec, const std::string& mount_base) {
  if (spec == "sysfs") return std::make_unique<BlockDrives>("/sys/block", "/dev", mount_base);
  if (spec.rfind("dir:", 0) == 0 && spec.size() > 4 && spec[4] == '/') {
    return std::make_unique<DirectoryDrives>(spec.substr(4));
  }
  throw std::invalid_argument(
      fmt::format("--drives '{}': use 'sysfs' or 'dir:/ABSOLUTE/PATH'", spec));
}

}  // namespace frakti::agent::container
