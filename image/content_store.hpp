#pragma once
// ContentStore: blobs by digest under <root>/blobs/sha256/<hex>.
//
// Data is written to <root>/ingest/ and renamed into place only after its size and sha256
// match, so a blob file that exists is always complete and correct. A per-digest flock in
// ingest/ makes concurrent pulls (threads or processes) download each blob once: the loser of
// the lock finds the blob committed and skips the download. Garbage collection runs under an
// exclusive lock that every pull holds shared, so GC never deletes a blob a pull is adding.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <set>
#include <string>

#include "common/fd.hpp"
#include "image/digest.hpp"

namespace frakti::image {

/// Receives a blob's bytes during ingestion; hashes as it writes.
class BlobWriter {
 public:
  virtual ~BlobWriter() = default;
  virtual void write(const char* data, size_t len) = 0;
  /// Drops everything written so far (a retried download starts again).
  virtual void reset() = 0;
  virtual uint64_t written() const = 0;
};

/// A shared or exclusive flock held for the lifetime of the object.
class FileLock {
 public:
  FileLock() = default;
  FileLock(const std::filesystem::path& path, bool exclusive);
  bool held() const { return fd_.valid(); }

 private:
  common::Fd fd_;
};

class ContentStore {
 public:
  /// Uses (and creates) root/blobs/sha256 and root/ingest.
  explicit ContentStore(std::filesystem::path root);

  bool has(const Digest& d) const;
  std::filesystem::path path(const Digest& d) const;
  /// Size of a committed blob; throws ImageError(not_found).
  uint64_t size(const Digest& d) const;
  /// Reads a small blob fully (manifests, configs); throws when larger than limit.
  std::string read(const Digest& d, size_t limit) const;

  /// Makes sure blob `d` of `expected_size` bytes (-1: unknown) is present. When absent,
  /// calls fetch(writer) under the blob's lock, verifies and commits. Returns true when this
  /// call stored the blob, false when it was already there. Throws ImageError(integrity)
  /// naming the blob on a size or digest mismatch, leaving nothing behind.
  bool ensure(const Digest& d, int64_t expected_size, const std::function<void(BlobWriter&)>& fetch);
  /// Stores in-memory data whose digest is computed here; returns it.
  Digest put(std::string_view data);
  /// Stores data whose digest is not known in advance (imports); returns its digest.
  Digest ingest(const std::function<void(BlobWriter&)>& produce);

  /// Deletes every blob not in `keep` and stale ingest files. Takes the GC lock exclusively;
  /// returns the number of bytes freed.
  uint64_t garbage_collect(const std::set<Digest>& keep);
  /// Shared hold on the GC lock; pulls keep one for their whole run.
  FileLock hold_gc_shared() const { return FileLock(root_ / "gc.lock", false); }
  /// Total bytes of committed blobs.
  uint64_t total_size() const;

  const std::filesystem::path& root() const { return root_; }

 private:
  std::filesystem::path root_;
};

}  // namespace frakti::image
