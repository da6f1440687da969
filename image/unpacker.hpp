#pragma once
// Unpacker: applies image layers (tar, tar+gzip, tar+zstd) one after another onto a directory,
// with OCI whiteouts, and checks each layer's diff_id (the sha256 of the uncompressed tar).
//
// Layers are untrusted. Entry names are cleaned (absolute names are made relative and
// reported; ".." is refused), every parent directory is opened with RESOLVE_IN_ROOT, and the
// final component is always created with *at calls that do not follow symlinks. A layer that
// tries to leave the root fails with ImageError(hostile) naming the entry.

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/fd.hpp"
#include "image/digest.hpp"

struct archive;
struct archive_entry;

namespace frakti::image {

/// What happened while applying layers: counts plus notable events (capped).
struct UnpackReport {
  uint64_t entries = 0;
  uint64_t bytes = 0;
  uint64_t whiteouts = 0;
  uint64_t skipped = 0;                ///< entries not reproducible here (devices without root)
  std::vector<std::string> warnings;   ///< absolute names, symlinked parents leaving the root...
  uint64_t warnings_dropped = 0;
};

class Unpacker {
 public:
  /// Unpacks into `root` (which must exist). Owners and device nodes are applied only when
  /// running as root; otherwise they are skipped and counted.
  explicit Unpacker(const std::filesystem::path& root);

  /// Applies one layer blob. When expected_diff_id is given, the uncompressed stream must
  /// hash to it (ImageError(integrity) otherwise). Returns the layer's diff_id.
  Digest apply(const std::filesystem::path& blob, const std::optional<Digest>& expected_diff_id,
               const std::string& layer_name);
  /// Sets directory modes and times (deferred so later entries can still write into them).
  void finish();

  const UnpackReport& report() const { return report_; }

 private:
  struct DirMeta {
    mode_t mode;
    int64_t mtime_sec;
    long mtime_nsec;
  };
  void apply_entry(::archive* ar, ::archive_entry* e, const std::string& layer);
  void warn(std::string msg);
  int parent_fd(const std::string& parent, const std::string& entry_name);

  common::Fd root_fd_;
  bool privileged_;
  UnpackReport report_;
  std::set<std::string> this_layer_;         ///< paths written by the layer being applied
  std::map<std::string, DirMeta> dir_meta_;  ///< applied in finish()
  std::string cached_parent_;
  common::Fd cached_parent_fd_;
};

}  // namespace frakti::image
