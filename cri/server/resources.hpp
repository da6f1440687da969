#pragma once
// A container's CRI LinuxContainerResources: one validation for CreateContainer and
// UpdateContainerResources (both backends), and the mapping to the guest agent's cgroup
// limits for VM pods. 0 in a field means "no limit" at create and "unchanged" at update.

#include "cri/server/backend.hpp"
#include "proto/agent/agent.pb.h"

namespace frakti::cri {

/// Throws CriError(INVALID_ARGUMENT) naming the field for values no cgroup takes.
void check_resources(const rt::LinuxContainerResources& r);

/// The agent's limits for r. Throws CriError(INVALID_ARGUMENT) for what a VM container cannot
/// have (hugepages, cgroup v2 "unified" entries).
agent::v1::Resources agent_resources(const rt::LinuxContainerResources& r);

}  // namespace frakti::cri
