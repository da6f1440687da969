#pragma once
// vmctl's container records: one directory per container under the state root
// (default /run/frakti/vmctl, so a reboot forgets containers whose VMs are gone anyway):
//
//   <state>/containers/<short id>/state.json   the record below, replaced atomically
//                           vsock.sock   the VM's hybrid vsock socket (host side)
//                           console.log  the guest's serial console
//                           vmm.log      frakti-vmm's own log
//                           container.log  container output in the CRI log format
//   <state>/lock                          held while creating or collecting
//
// A record names the supervising vmctl process and the VMM by pid + start time, so a reused
// pid is never mistaken for ours. collect_leftovers() finishes what a killed vmctl left.

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "sandbox/proc_ref.hpp"

namespace frakti::vmctl {

/// One process named by pid and its start time (jiffies since boot, /proc/<pid>/stat).
using sandbox::ProcRef;

struct ContainerRecord {
  std::string id;  ///< 64 hex
  std::string name;
  std::string image;     ///< as the user named it
  std::string image_id;  ///< sha256:...
  std::vector<std::string> command;
  std::string status = "created";  ///< created | running | exited
  int64_t created_ns = 0, started_ns = 0, finished_ns = 0;
  int exit_code = -1;
  std::string reason;  ///< "", "OOMKilled", "Error: ..." (why it ended, for ps and run)
  bool auto_remove = false;
  bool detached = false;
  bool terminal = false;
  ProcRef supervisor;
  ProcRef vmm;
  // What `vmctl exec` starts processes with unless told otherwise.
  std::vector<std::string> env;
  std::string cwd;
  std::string user;
  std::vector<std::string> caps;
  std::string stop_signal;  ///< image StopSignal ("SIGTERM" when empty)

  std::string short_id() const { return id.substr(0, 12); }
};

class StateDir {
 public:
  explicit StateDir(std::filesystem::path root);

  /// Named by the short ID: the VM's socket paths must stay within the VMM's 96 bytes.
  std::filesystem::path dir(const std::string& id) const { return containers_ / id.substr(0, 12); }
  std::filesystem::path vsock(const std::string& id) const { return dir(id) / "vsock.sock"; }
  std::filesystem::path log(const std::string& id) const { return dir(id) / "container.log"; }

  /// A new record with a fresh ID and the given (or a generated) name; the name must be free.
  /// Throws CommandError on a name conflict.
  ContainerRecord create(ContainerRecord rec);
  void save(const ContainerRecord& rec) const;
  std::optional<ContainerRecord> load(const std::string& id) const;
  std::vector<ContainerRecord> list() const;
  /// By name, full ID or unique ID prefix; throws CommandError when none or several match.
  ContainerRecord find(const std::string& name_or_id) const;
  /// Deletes the container's directory (and with it sockets and logs).
  void remove(const std::string& id) const;
  /// Records whose supervisor died: kills their VMM, marks them exited (or deletes --rm ones).
  void collect_leftovers() const;

 private:
  std::filesystem::path root_;
  std::filesystem::path containers_;
};

int64_t now_ns();

}  // namespace frakti::vmctl
