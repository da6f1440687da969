#include "image/unpacker.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <fmt/format.h>

#include "common/error.hpp"
#include "image/error.hpp"
#include "image/safe_path.hpp"

namespace frakti::image {

namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxWarnings = 50;
constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kOpaque = ".wh..wh..opq";

using ArchivePtr = std::unique_ptr<archive, int (*)(archive*)>;

// Feeds the inner tar reader from the outer decompressing reader and hashes every
// uncompressed byte on the way, which yields the diff_id without a second pass.
struct Decompressed {
  archive* outer;
  Sha256 hash;
  uint64_t total = 0;
  const void* block = nullptr;
  std::string error;
};

la_ssize_t read_decompressed(archive*, void* user, const void** buf) {
  auto* d = static_cast<Decompressed*>(user);
  size_t size = 0;
  la_int64_t offset = 0;
  int r = archive_read_data_block(d->outer, &d->block, &size, &offset);
  if (r == ARCHIVE_EOF) return 0;
  if (r < ARCHIVE_WARN) {
    d->error = archive_error_string(d->outer) ? archive_error_string(d->outer) : "decompression failed";
    return -1;
  }
  d->hash.update(d->block, size);
  d->total += size;
  *buf = d->block;
  return static_cast<la_ssize_t>(size);
}

std::string archive_err(archive* a) {
  const char* s = archive_error_string(a);
  return s ? s : "unknown libarchive error";
}

void set_times_at(int dirfd, const char* name, archive_entry* e, int flags) {
  timespec ts[2];
  ts[0].tv_sec = ts[1].tv_sec = archive_entry_mtime(e);
  ts[0].tv_nsec = ts[1].tv_nsec = archive_entry_mtime_nsec(e);
  ::utimensat(dirfd, name, ts, flags);
}

}  // namespace

Unpacker::Unpacker(const fs::path& root) : privileged_(::geteuid() == 0) {
  root_fd_ = common::Fd(common::check(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC), "open unpack root {}",
                                      root.string()));
}

void Unpacker::warn(std::string msg) {
  if (report_.warnings.size() < kMaxWarnings) {
    report_.warnings.push_back(std::move(msg));
  } else {
    ++report_.warnings_dropped;
  }
}

int Unpacker::parent_fd(const std::string& parent, const std::string& entry_name) {
  if (cached_parent_fd_ && cached_parent_ == parent) return cached_parent_fd_.get();
  bool escaped = false;
  cached_parent_fd_ = open_dir_in_root(root_fd_.get(), parent, true, &escaped);
  cached_parent_ = parent;
  if (escaped) warn(fmt::format("entry \"{}\": its parent goes through a symlink leaving the root; kept inside", entry_name));
  return cached_parent_fd_.get();
}

Digest Unpacker::apply(const fs::path& blob, const std::optional<Digest>& expected, const std::string& layer) {
  this_layer_.clear();
  cached_parent_fd_.reset();
  ArchivePtr outer(archive_read_new(), archive_read_free);
  archive_read_support_filter_all(outer.get());
  archive_read_support_format_raw(outer.get());
  if (archive_read_open_filename(outer.get(), blob.c_str(), 1 << 20) != ARCHIVE_OK) {
    throw ImageError(ErrorKind::invalid, fmt::format("layer {}: {}", layer, archive_err(outer.get())));
  }
  archive_entry* raw_entry = nullptr;
  if (archive_read_next_header(outer.get(), &raw_entry) != ARCHIVE_OK) {
    throw ImageError(ErrorKind::invalid, fmt::format("layer {}: {}", layer, archive_err(outer.get())));
  }
  Decompressed dec{outer.get(), Sha256(), 0, nullptr, {}};
  ArchivePtr inner(archive_read_new(), archive_read_free);
  archive_read_support_format_tar(inner.get());
  archive_read_support_format_gnutar(inner.get());
  if (archive_read_open(inner.get(), &dec, nullptr, read_decompressed, nullptr) != ARCHIVE_OK) {
    throw ImageError(ErrorKind::invalid, fmt::format("layer {}: not a tar archive: {}", layer,
                                                     dec.error.empty() ? archive_err(inner.get()) : dec.error));
  }
  for (;;) {
    archive_entry* e = nullptr;
    int r = archive_read_next_header(inner.get(), &e);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) {
      throw ImageError(ErrorKind::invalid, fmt::format("layer {}: bad tar data after {} entries: {}", layer,
                                                       report_.entries, dec.error.empty() ? archive_err(inner.get()) : dec.error));
    }
    try {
      apply_entry(inner.get(), e, layer);
    } catch (const std::system_error& err) {
      // For example a dangling symlink as a parent: refused rather than followed out.
      const char* n = archive_entry_pathname(e);
      throw ImageError(ErrorKind::invalid, fmt::format("layer {}: entry \"{}\": {}", layer,
                                                       std::string(n ? n : "").substr(0, 200), err.what()));
    }
    ++report_.entries;
  }
  // Whatever follows the end-of-archive marker is still part of the diff_id.
  const void* buf;
  while (read_decompressed(nullptr, &dec, &buf) > 0) {
  }
  if (!dec.error.empty()) throw ImageError(ErrorKind::invalid, fmt::format("layer {}: {}", layer, dec.error));
  Digest diff_id = dec.hash.finish();
  if (expected && diff_id != *expected) {
    throw ImageError(ErrorKind::integrity, fmt::format("layer {}: uncompressed content has digest {} but the image "
                                                       "config lists diff_id {}",
                                                       layer, diff_id.str(), expected->str()));
  }
  return diff_id;
}

void Unpacker::apply_entry(archive* ar, archive_entry* e, const std::string& layer) {
  const char* raw = archive_entry_pathname(e);
  if (!raw) throw ImageError(ErrorKind::invalid, fmt::format("layer {}: entry without a name", layer));
  CleanPath p;
  std::string why;
  if (!clean_entry_path(raw, p, why)) {
    throw ImageError(ErrorKind::hostile, fmt::format("layer {}: entry \"{}\" refused: {}", layer,
                                                     std::string(raw).substr(0, 200), why));
  }
  if (p.was_absolute) warn(fmt::format("entry \"{}\": absolute name, unpacked relative to the root", raw));
  if (p.parts.empty()) return;  // the root directory itself: keep ours
  const std::string& name = p.name();
  std::string path = p.str();
  std::string parent = p.parent();

  // Whiteouts delete what lower layers put there; they are never written out.
  if (name.rfind(kWhiteoutPrefix, 0) == 0) {
    ++report_.whiteouts;
    cached_parent_fd_.reset();
    common::Fd dir = open_dir_in_root(root_fd_.get(), parent, true, nullptr);
    if (name == kOpaque) {
      int fd = ::openat(dir.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (fd < 0) common::throw_errno(fmt::format("open \"{}\" for an opaque whiteout", parent));
      DIR* d = ::fdopendir(fd);
      std::vector<std::string> victims;
      while (dirent* de = ::readdir(d)) {
        std::string n = de->d_name;
        if (n == "." || n == "..") continue;
        std::string child = parent.empty() ? n : parent + "/" + n;
        if (!this_layer_.count(child)) victims.push_back(n);
      }
      for (auto& v : victims) remove_tree_at(::dirfd(d), v);
      ::closedir(d);
      return;
    }
    std::string target = name.substr(kWhiteoutPrefix.size());
    if (target.empty() || target == "." || target == "..") {
      throw ImageError(ErrorKind::hostile, fmt::format("layer {}: malformed whiteout \"{}\"", layer, raw));
    }
    remove_tree_at(dir.get(), target);
    return;
  }

  // Record the path and its ancestors so an opaque marker later in this layer spares them.
  for (std::string a = path;; a = a.substr(0, a.rfind('/'))) {
    if (!this_layer_.insert(a).second) break;
    if (a.find('/') == std::string::npos) break;
  }

  mode_t type = archive_entry_filetype(e);
  const char* hardlink = archive_entry_hardlink(e);
  if (type != AE_IFREG || hardlink) cached_parent_fd_.reset();
  int dir = parent_fd(parent, raw);
  mode_t perm = archive_entry_perm(e);
  uid_t uid = static_cast<uid_t>(archive_entry_uid(e));
  gid_t gid = static_cast<gid_t>(archive_entry_gid(e));

  struct stat existing{};
  bool exists = ::fstatat(dir, name.c_str(), &existing, AT_SYMLINK_NOFOLLOW) == 0;
  // A directory entry over an existing directory merges into it; anything else replaces.
  if (exists && !(type == AE_IFDIR && S_ISDIR(existing.st_mode) && !hardlink)) remove_tree_at(dir, name);

  auto set_xattrs = [&](int fd, const std::string& linkpath) {
    const char* xn;
    const void* xv;
    size_t xs;
    archive_entry_xattr_reset(e);
    while (archive_entry_xattr_next(e, &xn, &xv, &xs) == ARCHIVE_OK) {
      int rc = fd >= 0 ? ::fsetxattr(fd, xn, xv, xs, 0) : ::lsetxattr(linkpath.c_str(), xn, xv, xs, 0);
      if (rc < 0) warn(fmt::format("entry \"{}\": xattr {} not set: {}", path, xn, std::strerror(errno)));
    }
  };
  auto chown_at = [&](const char* n) {
    if (privileged_ && ::fchownat(dir, n, uid, gid, AT_SYMLINK_NOFOLLOW) < 0) {
      common::throw_errno(fmt::format("chown \"{}\"", path));
    }
  };

  if (hardlink) {
    CleanPath t;
    if (!clean_entry_path(hardlink, t, why) || t.parts.empty()) {
      throw ImageError(ErrorKind::hostile, fmt::format("layer {}: hard link \"{}\" -> \"{}\" refused: {}", layer, raw,
                                                       std::string(hardlink).substr(0, 200), why.empty() ? "empty target" : why));
    }
    common::Fd tdir = open_dir_in_root(root_fd_.get(), t.parent(), false, nullptr);
    if (::linkat(tdir.get(), t.name().c_str(), dir, name.c_str(), 0) < 0) {
      throw ImageError(ErrorKind::invalid, fmt::format("layer {}: hard link \"{}\" -> \"{}\": {}", layer, path, t.str(),
                                                       std::strerror(errno)));
    }
    return;
  }

  switch (type) {
    case AE_IFDIR: {
      if (::mkdirat(dir, name.c_str(), 0700) < 0 && errno != EEXIST) common::throw_errno(fmt::format("mkdir \"{}\"", path));
      chown_at(name.c_str());
      common::Fd fd(::openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!fd) common::throw_errno(fmt::format("open directory \"{}\"", path));
      set_xattrs(fd.get(), {});
      // Owner-writable until finish(), so later entries can land inside.
      ::fchmod(fd.get(), perm | S_IRWXU);
      dir_meta_[path] = DirMeta{perm | (archive_entry_mode(e) & (S_ISUID | S_ISGID | S_ISVTX)),
                                archive_entry_mtime(e), archive_entry_mtime_nsec(e)};
      break;
    }
    case AE_IFREG: {
      common::Fd fd(::openat(dir, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (!fd) common::throw_errno(fmt::format("create \"{}\"", path));
      const void* block;
      size_t size;
      la_int64_t offset;
      int r;
      while ((r = archive_read_data_block(ar, &block, &size, &offset)) == ARCHIVE_OK) {
        // Sparse entries come as blocks at offsets; pwrite keeps the holes.
        const char* b = static_cast<const char*>(block);
        size_t done = 0;
        while (done < size) {
          ssize_t n = ::pwrite(fd.get(), b + done, size - done, offset + static_cast<off_t>(done));
          if (n < 0) common::throw_errno(fmt::format("write \"{}\"", path));
          done += static_cast<size_t>(n);
        }
        report_.bytes += size;
      }
      if (r != ARCHIVE_EOF) throw ImageError(ErrorKind::invalid, fmt::format("layer {}: data of \"{}\": {}", layer, path, archive_err(ar)));
      common::check(::ftruncate(fd.get(), archive_entry_size(e)), "truncate \"{}\"", path);
      if (privileged_) common::check(::fchown(fd.get(), uid, gid), "chown \"{}\"", path);
      set_xattrs(fd.get(), {});
      // After chown, which clears set-id bits.
      common::check(::fchmod(fd.get(), archive_entry_mode(e) & 07777), "chmod \"{}\"", path);
      timespec ts[2];
      ts[0].tv_sec = ts[1].tv_sec = archive_entry_mtime(e);
      ts[0].tv_nsec = ts[1].tv_nsec = archive_entry_mtime_nsec(e);
      ::futimens(fd.get(), ts);
      break;
    }
    case AE_IFLNK: {
      const char* target = archive_entry_symlink(e);
      if (!target) target = "";
      // The target text is stored as is: it is only ever resolved inside the root later.
      if (::symlinkat(target, dir, name.c_str()) < 0) common::throw_errno(fmt::format("symlink \"{}\"", path));
      chown_at(name.c_str());
      set_xattrs(-1, fmt::format("/proc/self/fd/{}/{}", dir, name));
      set_times_at(dir, name.c_str(), e, AT_SYMLINK_NOFOLLOW);
      break;
    }
    case AE_IFCHR:
    case AE_IFBLK:
    case AE_IFIFO: {
      mode_t kind = type == AE_IFCHR ? S_IFCHR : type == AE_IFBLK ? S_IFBLK : S_IFIFO;
      dev_t dev = type == AE_IFIFO ? 0 : makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e));
      if (::mknodat(dir, name.c_str(), kind | perm, dev) < 0) {
        if (errno == EPERM) {
          ++report_.skipped;
          warn(fmt::format("entry \"{}\": device node skipped (needs root)", path));
          break;
        }
        common::throw_errno(fmt::format("mknod \"{}\"", path));
      }
      chown_at(name.c_str());
      ::fchmodat(dir, name.c_str(), archive_entry_mode(e) & 07777, 0);
      set_times_at(dir, name.c_str(), e, AT_SYMLINK_NOFOLLOW);
      break;
    }
    default:
      ++report_.skipped;
      warn(fmt::format("entry \"{}\": unsupported type {:o} skipped", path, type));
  }
}

void Unpacker::finish() {
  // Deepest first, so setting a parent's time is not undone by touching its children.
  for (auto it = dir_meta_.rbegin(); it != dir_meta_.rend(); ++it) {
    CleanPath p;
    std::string why;
    clean_entry_path(it->first, p, why);
    try {
      common::Fd parent = open_dir_in_root(root_fd_.get(), p.parent(), false, nullptr);
      common::Fd fd(::openat(parent.get(), p.name().c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!fd) continue;  // removed by a later whiteout
      ::fchmod(fd.get(), it->second.mode);
      timespec ts[2];
      ts[0].tv_sec = ts[1].tv_sec = it->second.mtime_sec;
      ts[0].tv_nsec = ts[1].tv_nsec = it->second.mtime_nsec;
      ::futimens(fd.get(), ts);
    } catch (const std::system_error&) {
      // The directory went away under a later layer; nothing to set.
    }
  }
  dir_meta_.clear();
}

}  // namespace frakti::image
