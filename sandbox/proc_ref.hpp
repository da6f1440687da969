#pragma once
// ProcRef: a process named by pid and start time, so a recycled pid is never mistaken for a
// VMM, shim or supervisor recorded earlier. vmctl and the daemon store these in their records.

#include <sys/types.h>

#include <cstdint>

namespace frakti::sandbox {

struct ProcRef {
  pid_t pid = 0;
  uint64_t start = 0;  ///< /proc/<pid>/stat field 22, clock ticks since boot
  static ProcRef self();
  static ProcRef of(pid_t pid);
  /// The same process still runs (not a zombie, not a new process with the same pid).
  bool alive() const;
};

}  // namespace frakti::sandbox
