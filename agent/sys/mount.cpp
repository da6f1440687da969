#include "agent/sys/mount.hpp"

#include <sys/mount.h>
#include <sys/stat.h>

#include "common/error.hpp"

namespace frakti::agent::sys {

void mount(const std::string& source, const std::string& target, const std::string& type,
           unsigned long flags, const std::string& data) {
  if (::mount(source.empty() ? nullptr : source.c_str(), target.c_str(),
              type.empty() ? nullptr : type.c_str(), flags,
              data.empty() ? nullptr : data.c_str()) < 0) {
    common::throw_errno(fmt::format("mount {} {} on {} (flags {:#x}{}{})",
                                    type.empty() ? "-" : type, source.empty() ? "-" : source,
                                    target, flags, data.empty() ? "" : ", data ", data));
  }
}

void umount(const std::string& target, int flags, bool missing_ok) {
  if (::umount2(target.c_str(), flags) < 0) {
    if (missing_ok && (errno == EINVAL || errno == ENOENT)) return;
    common::throw_errno(fmt::format("umount {}", target));
  }
}

bool is_mount_point(const std::string& path) {
  struct statx self {
  }, parent{};
  if (::statx(AT_FDCWD, path.c_str(), AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &self) < 0) return false;
  std::string up = path + "/..";
  if (::statx(AT_FDCWD, up.c_str(), 0, STATX_MNT_ID, &parent) < 0) return false;
  if ((self.stx_mask & STATX_MNT_ID) && (parent.stx_mask & STATX_MNT_ID)) {
    return self.stx_mnt_id != parent.stx_mnt_id;
  }
  return self.stx_dev_major != parent.stx_dev_major || self.stx_dev_minor != parent.stx_dev_minor;
}

}  // namespace frakti::agent::sys
