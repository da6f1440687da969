#pragma once
// Paths inside a container's rootfs that cannot escape it. The image (and earlier volume
// mounts) may hold symlinks such as /etc -> ../../../host; a mount destination, masked path
// or file the agent writes is resolved like the kernel would inside a chroot at root: ".."
// stops at root, absolute symlink targets restart at root.

#include <string>
#include <string_view>

namespace frakti::agent::container {

/// root + unsafe with every symlink of the existing prefix resolved inside root. Components
/// that do not exist (yet) are appended as they are. Throws std::system_error (ELOOP) after
/// 255 symlinks, or when a non-final existing component is not a directory (ENOTDIR).
std::string resolve_in_root(const std::string& root, std::string_view unsafe);

/// resolve_in_root, then creates the result (and missing parents, each re-resolved so a
/// symlink cannot redirect them) as a directory, or as an empty file when as_file.
std::string create_in_root(const std::string& root, std::string_view unsafe, bool as_file);

}  // namespace frakti::agent::container
