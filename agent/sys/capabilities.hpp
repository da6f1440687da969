#pragma once
// Linux capabilities by OCI name ("CAP_NET_ADMIN") and the calls that set a process's five
// capability sets. Used in the container child just before exec.

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace frakti::agent::sys {

/// The capability number for an OCI name ("CAP_CHOWN" -> 0); nullopt for an unknown name.
std::optional<int> capability_from_name(std::string_view name);
/// The highest capability the running kernel knows (/proc/sys/kernel/cap_last_cap), or the
/// highest this program knows when procfs is not readable.
int last_capability();

/// The five sets as capability numbers.
struct CapabilitySets {
  std::vector<int> bounding, effective, inheritable, permitted, ambient;
};

/// Drops every capability not in sets.bounding from the bounding set. Call while still
/// privileged (before the user switch).
void drop_bounding_set(const CapabilitySets& sets);
/// Sets effective/permitted/inheritable with capset(2), then raises the ambient ones. Call
/// after the user switch (with PR_SET_KEEPCAPS set before it).
void apply_capabilities(const CapabilitySets& sets);

}  // namespace frakti::agent::sys
