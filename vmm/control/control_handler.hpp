#pragma once
// ControlHandler: the seam between the control socket and the VM. The VM wiring implements it;
// ControlServer calls it. Nothing here knows about KVM, vCPUs or virtio.
//
// Threads (see docs/vmm-control.md, "Threads"):
//   - drive_slot_count() and status() are called on the event-loop thread that runs the
//     server's io_context. They must be quick and must not block.
//   - pause(), resume(), stop() and set_drive() ("commands") are called on the server's one
//     command thread ("vmm-control"), one at a time in arrival order, while the event loop keeps
//     running (so status() may run concurrently with any command). They may block; stop()
//     typically blocks for up to its timeout. They must return once the VM has stopped, even if
//     the event loop no longer runs (never wait for the loop without a bound).
//
// Errors: throw ControlError to choose the code the caller sees. Other exceptions become
// `internal` errors, except std::invalid_argument (`invalid_argument`) and std::system_error
// with ENOENT (`not_found`). The exception's what() is the message, so make it say what failed
// on what (e.g. "open /var/lib/frakti/images/x.erofs: No such file or directory").

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace frakti::vmm::control {

/// The VM's life cycle as the control API reports it.
enum class VmState { running, paused, stopping, stopped };

/// Wire name of a state ("running", ...), and its inverse (nullopt when unknown).
const char* vm_state_name(VmState state);
std::optional<VmState> parse_vm_state(std::string_view name);

/// One reserved virtio-blk slot: what backs it now. An empty slot has an empty path.
struct DriveSlotInfo {
  uint32_t slot = 0;
  std::string path;
  bool read_only = true;
  std::string serial;
  bool operator==(const DriveSlotInfo&) const = default;
};

/// A snapshot of the VM for `status`.
struct VmStatus {
  VmState state = VmState::running;
  uint32_t vcpus = 0;
  uint64_t memory_mib = 0;
  /// Time since the VMM process started.
  std::chrono::milliseconds uptime{0};
  /// Time from VMM start to the guest's boot-timer write; nullopt until the guest has written.
  std::optional<std::chrono::microseconds> boot_time;
  /// Every drive slot the control socket may change, in slot order.
  std::vector<DriveSlotInfo> drives;
  bool operator==(const VmStatus&) const = default;
};

/// How a stop ended.
struct StopResult {
  /// True when the VM was hard-stopped: graceful was false, or the guest did not power off
  /// within the timeout.
  bool forced = false;
  bool operator==(const StopResult&) const = default;
};

/// Implemented by the VM (vmm/vm); called by ControlServer. See the header comment for threads.
class ControlHandler {
 public:
  virtual ~ControlHandler() = default;

  /// Number of drive slots set_drive may address (slots 0 .. count-1). Fixed for the VM's life;
  /// the server rejects other slot numbers with not_found before calling set_drive.
  virtual uint32_t drive_slot_count() const = 0;

  /// A snapshot of the VM. Event-loop thread; must not block.
  virtual VmStatus status() = 0;

  /// Stops running guest code until resume(). Command thread.
  virtual void pause() = 0;
  /// Runs the guest again after pause(). Command thread.
  virtual void resume() = 0;

  /// Stops the VM. graceful: ask the guest to power off (the VM chooses how) and hard-stop it
  /// if it has not within timeout; not graceful: hard-stop now (timeout unused). Returns once
  /// the VM is stopped (or stopping irrevocably). Command thread; may block up to timeout.
  virtual StopResult stop(bool graceful, std::chrono::milliseconds timeout) = 0;

  /// Media swap for a reserved virtio-blk slot: path set = back the slot with that file (with
  /// read_only and serial), nullopt = eject (the slot reads as empty, serial cleared). The VM
  /// raises the device's config-change interrupt so the guest sees the new capacity.
  /// slot < drive_slot_count(), path absolute, serial <= 20 printable ASCII bytes: the server
  /// has checked these. Command thread.
  virtual void set_drive(uint32_t slot, const std::optional<std::string>& path, bool read_only,
                         const std::string& serial) = 0;
};

}  // namespace frakti::vmm::control
