#pragma once
// Drives: where a virtio-blk serial's file system is found. One of the two switches between
// the VM and the host test mode:
//   BlockDrives      (VM) finds /dev/vdX whose /sys/block/vdX/serial matches, waiting for a
//                    hot-swapped slot to get its media, and mounts it under the state dir.
//   DirectoryDrives  (host tests) maps serial S to the directory DIR/S; nothing is mounted.
// Everything runs on the agent's thread; attach() blocks up to its deadline.

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace frakti::agent::container {

struct AttachedDrive {
  std::string device;       // "/dev/vdb", or the directory for DirectoryDrives
  std::string mount_point;  // where its file system is
};

class Drives {
 public:
  virtual ~Drives() = default;
  /// Makes the drive's file system available; a drive already attached is returned as it
  /// is. mount_point empty = the default place. Throws AgentError(CODE_NOT_FOUND) naming the
  /// serial when no drive shows up before deadline.
  virtual AttachedDrive attach(const std::string& serial, const std::string& fs_type,
                               bool read_only, const std::string& options,
                               const std::string& mount_point,
                               std::chrono::steady_clock::time_point deadline) = 0;
  /// The drive's device node itself, unmounted (a host block device passed into a
  /// container). Throws AgentError(CODE_NOT_FOUND) like attach().
  virtual std::string device_node(const std::string& serial,
                                  std::chrono::steady_clock::time_point deadline) = 0;
  /// Unmounts a drive attach() mounted; AgentError(CODE_NOT_FOUND) if it is not attached.
  virtual void detach(const std::string& serial) = 0;
  /// Unmounts everything (shutdown).
  virtual void detach_all() = 0;
};

/// Finds the block device whose serial is `serial` under sys_block ("/sys/block"), with a
/// non-zero size; "" if none (yet). dev_dir ("/dev") prefixes the returned name.
std::string find_block_device(const std::string& sys_block, const std::string& dev_dir,
                              const std::string& serial);

class BlockDrives : public Drives {
 public:
  BlockDrives(std::string sys_block, std::string dev_dir, std::string mount_base);
  AttachedDrive attach(const std::string& serial, const std::string& fs_type, bool read_only,
                       const std::string& options, const std::string& mount_point,
                       std::chrono::steady_clock::time_point deadline) override;
  std::string device_node(const std::string& serial,
                          std::chrono::steady_clock::time_point deadline) override;
  void detach(const std::string& serial) override;
  void detach_all() override;

 private:
  // Waits until the drive has media; its /dev path.
  std::string wait_for_device(const std::string& serial,
                              std::chrono::steady_clock::time_point deadline) const;
  std::string sys_block_, dev_dir_, mount_base_;
  std::map<std::string, AttachedDrive> attached_;
};

class DirectoryDrives : public Drives {
 public:
  explicit DirectoryDrives(std::string base) : base_(std::move(base)) {}
  AttachedDrive attach(const std::string& serial, const std::string& fs_type, bool read_only,
                       const std::string& options, const std::string& mount_point,
                       std::chrono::steady_clock::time_point deadline) override;
  /// The file DIR/S (of any kind) stands in for the device node.
  std::string device_node(const std::string& serial,
                          std::chrono::steady_clock::time_point deadline) override;
  void detach(const std::string&) override {}
  void detach_all() override {}

 private:
  std::string base_;
};

/// "sysfs" -> BlockDrives on /sys/block and /dev, mounting under mount_base;
/// "dir:PATH" -> DirectoryDrives(PATH). Throws std::invalid_argument for anything else.
std::unique_ptr<Drives> make_drives(const std::string& spec, const std::string& mount_base);

}  // namespace frakti::agent::container
