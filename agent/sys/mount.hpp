#pragma once
// mount(2)/umount2(2) with messages that name the file system, source, target and flags.

#include <string>

namespace frakti::agent::sys {

/// mount(2); throws std::system_error "mount TYPE SOURCE on TARGET (flags 0x.., data ..)".
void mount(const std::string& source, const std::string& target, const std::string& type,
           unsigned long flags, const std::string& data = {});
/// umount2(2); throws naming the target. EINVAL/ENOENT (not mounted) are ignored when
/// missing_ok.
void umount(const std::string& target, int flags = 0, bool missing_ok = false);
/// True when path is a mount point (its mount id differs from its parent's).
bool is_mount_point(const std::string& path);

}  // namespace frakti::agent::sys
