#pragma once
// Path handling for unpacking untrusted layers: names are cleaned and checked before use, and
// every directory is opened relative to the root with openat2(RESOLVE_IN_ROOT), so neither
// "..", absolute names nor symlinks planted by earlier entries can reach outside the root.

#include <string>
#include <string_view>
#include <vector>

#include "common/fd.hpp"

namespace frakti::image {

/// A layer entry name split into checked components ("a/b/c" -> {"a","b","c"}).
struct CleanPath {
  std::vector<std::string> parts;
  bool was_absolute = false;  ///< the name started with '/' (tolerated, stripped, reported)
  std::string str() const;    ///< "a/b/c" ("" for the root itself)
  std::string parent() const;
  const std::string& name() const { return parts.back(); }
};

/// Cleans an entry name: drops "." and empty parts and a leading '/'. Returns false (with
/// `why`) for names that contain "..", NUL, over-long parts or total length past PATH_MAX.
bool clean_entry_path(std::string_view raw, CleanPath& out, std::string& why);

/// Opens directory `rel` ("" = root) under root_fd as an O_PATH fd, resolving symlinks as if
/// root_fd were "/". Creates missing directories (mode 0755) when `create`. `escaped` is set
/// when resolution went through a symlink pointing outside the root (contained, but worth
/// reporting). Throws std::system_error on failure.
common::Fd open_dir_in_root(int root_fd, const std::string& rel, bool create, bool* escaped);

/// Removes `name` inside dir_fd recursively without following any symlink. ENOENT is fine.
void remove_tree_at(int dir_fd, const std::string& name);

}  // namespace frakti::image
