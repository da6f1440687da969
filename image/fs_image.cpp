#include "image/fs_image.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include "common/log.hpp"
#include "image/error.hpp"
#include "image/run_command.hpp"
#include "image/safe_path.hpp"

namespace frakti::image {

namespace fs = std::filesystem;

const char* fs_format_name(FsFormat f) { return f == FsFormat::erofs ? "erofs" : "ext4"; }

FsFormat parse_fs_format(const std::string& s) {
  if (s == "erofs") return FsFormat::erofs;
  if (s == "ext4") return FsFormat::ext4;
  throw ImageError(ErrorKind::invalid, fmt::format("unknown filesystem image format \"{}\" (use erofs or ext4)", s));
}

namespace {

// ext4 needs its size up front: file data in 4 KiB blocks plus inode tables, with slack.
void ext4_size(const fs::path& tree, uint64_t& bytes, uint64_t& inodes) {
  bytes = 0;
  inodes = 16;
  for (auto it = fs::recursive_directory_iterator(tree, fs::directory_options::none); it != fs::recursive_directory_iterator(); ++it) {
    struct stat st{};
    if (::lstat(it->path().c_str(), &st) != 0) continue;
    ++inodes;
    bytes += (static_cast<uint64_t>(st.st_size) + 4095) / 4096 * 4096;
    if (S_ISLNK(st.st_mode) || S_ISDIR(st.st_mode)) bytes += 4096;
  }
  bytes = bytes + bytes / 10 + inodes * 256 + (16u << 20);
}

}  // namespace

void make_fs_image(FsFormat format, const fs::path& tree, const fs::path& out) {
  fs::path tmp = out;
  tmp += fmt::format(".{}.tmp", ::getpid());
  std::error_code ec;
  fs::remove(tmp, ec);
  std::string what = fmt::format("build {} image {}", fs_format_name(format), out.string());
  try {
    if (format == FsFormat::erofs) {
      // Uncompressed: the guest kernel and loop mounts read it without a decompressor.
      run_command({"mkfs.erofs", "--quiet", "-x1", tmp.string(), tree.string()}, what);
    } else {
      uint64_t bytes, inodes;
      ext4_size(tree, bytes, inodes);
      run_command({"mkfs.ext4", "-q", "-F", "-O", "^has_journal", "-m", "0", "-N", std::to_string(inodes + inodes / 5),
                   "-d", tree.string(), tmp.string(), std::to_string(bytes / 1024) + "k"},
                  what);
    }
    fs::rename(tmp, out);
  } catch (...) {
    fs::remove(tmp, ec);
    throw;
  }
}

FsImageBuilder::FsImageBuilder(fs::path root, ContentStore& content, FsFormat format)
    : dir_(root / "fs"), tmp_(root / "tmp"), content_(content), format_(format) {
  fs::create_directories(dir_);
  fs::create_directories(tmp_);
}

fs::path FsImageBuilder::path(const Digest& id) const {
  return dir_ / fmt::format("{}.{}", id.hex(), fs_format_name(format_));
}

UnpackReport FsImageBuilder::unpack(const ImageRecord& image, const fs::path& target) {
  if (image.config.diff_ids.size() != image.layers.size()) {
    throw ImageError(ErrorKind::invalid, fmt::format("image {}: config lists {} diff_ids for {} layers", image.id.str(),
                                                     image.config.diff_ids.size(), image.layers.size()));
  }
  Unpacker u(target);
  for (size_t i = 0; i < image.layers.size(); ++i) {
    auto& l = image.layers[i];
    u.apply(content_.path(l.digest), image.config.diff_ids[i], l.digest.str());
  }
  u.finish();
  return u.report();
}

fs::path FsImageBuilder::ensure(const ImageRecord& image, UnpackReport* report, const fs::path& keep_tree) {
  fs::path out = path(image.id);
  // Built images appear by rename, so one that exists is whole: no lock needed (which also
  // lets readers use a read-only image root, as the KVM test box shares it).
  if (fs::exists(out) && keep_tree.empty()) return out;
  FileLock lock(tmp_ / fmt::format("{}.lock", image.id.hex()), true);
  if (fs::exists(out) && keep_tree.empty()) return out;
  fs::path tree = keep_tree.empty() ? tmp_ / fmt::format("{}.rootfs.{}", image.id.hex(), ::getpid()) : keep_tree;
  std::error_code ec;
  auto cleanup = [&] {
    if (!keep_tree.empty()) return;
    // remove_tree_at never follows symlinks planted by the image.
    try {
      common::Fd parent(::open(tree.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (parent) remove_tree_at(parent.get(), tree.filename().string());
    } catch (const std::exception& e) {
      common::log::warn("image", "cannot remove unpack tree {}: {}", tree.string(), e.what());
    }
  };
  cleanup();
  fs::create_directories(tree);
  ::chmod(tree.c_str(), 0755);
  try {
    auto t0 = std::chrono::steady_clock::now();
    UnpackReport r = unpack(image, tree);
    auto t1 = std::chrono::steady_clock::now();
    if (report) *report = r;
    make_fs_image(format_, tree, out);
    auto t2 = std::chrono::steady_clock::now();
    common::log::info("image", "built {} for {}: unpack {} ms ({} entries), mkfs {} ms", out.filename().string(),
                      image.short_id(), std::chrono::duration_cast<std::chrono::milliseconds>(t1 - t0).count(), r.entries,
                      std::chrono::duration_cast<std::chrono::milliseconds>(t2 - t1).count());
  } catch (...) {
    cleanup();
    throw;
  }
  auto t = std::chrono::steady_clock::now();
  cleanup();
  common::log::info("image", "removed the unpack tree of {} in {} ms", image.short_id(),
                    std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t).count());
  return out;
}

void FsImageBuilder::remove(const Digest& id) {
  std::error_code ec;
  fs::remove(path(id), ec);
}

}  // namespace frakti::image
