#include "cri/shim/host_files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include <fmt/format.h>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace frakti::cri::shim {

namespace fs = std::filesystem;
namespace v1 = ::frakti::agent::v1;

namespace {

class Batcher {
 public:
  Batcher(const fs::path& top, const HostFileLimits& limits) : top_(top), limits_(limits) { batches_.emplace_back(); }

  void add(const std::string& rel, const struct stat& st, const fs::path& full) {
    if (++entries_ > limits_.max_entries)
      throw std::runtime_error(fmt::format("host path {} has more than {} entries to copy into the VM pod; mount a "
                                           "smaller directory",
                                           top_.string(), limits_.max_entries));
    v1::FileEntry e;
    e.set_path(rel);
    e.set_mode(st.st_mode & 07777);
    e.set_uid(st.st_uid);
    e.set_gid(st.st_gid);
    if (S_ISDIR(st.st_mode)) {
      e.set_kind(v1::FileEntry::KIND_DIRECTORY);
      push(std::move(e));
    } else if (S_ISLNK(st.st_mode)) {
      e.set_kind(v1::FileEntry::KIND_SYMLINK);
      std::error_code ec;
      auto target = fs::read_symlink(full, ec);
      if (ec) throw std::runtime_error(fmt::format("reading symlink {}: {}", full.string(), ec.message()));
      e.set_link_target(target.string());
      push(std::move(e));
    } else if (S_ISREG(st.st_mode)) {
      add_file(std::move(e), full, st);
    }  // sockets, FIFOs and devices have no content to copy
  }

  std::vector<v1::PutFilesRequest> take() {
    if (batches_.back().entries_size() == 0 && batches_.size() > 1) batches_.pop_back();
    return std::move(batches_);
  }

 private:
  void add_file(v1::FileEntry e, const fs::path& full, const struct stat& st) {
    bytes_ += static_cast<uint64_t>(st.st_size);
    if (bytes_ > limits_.max_bytes)
      throw std::runtime_error(fmt::format("host path {} holds more than {} MiB to copy into the VM pod; mount "
                                           "less, or run the pod with runc",
                                           top_.string(), limits_.max_bytes >> 20));
    common::Fd fd(::open(full.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) common::throw_errno("open " + full.string() + " to copy it into the VM pod");
    e.set_kind(v1::FileEntry::KIND_FILE);
    bool first = true;
    std::string chunk;
    for (;;) {
      chunk.resize(static_cast<size_t>(std::min<uint64_t>(limits_.batch_bytes, 1 << 20)));
      ssize_t n = ::read(fd.get(), chunk.data(), chunk.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) common::throw_errno("read " + full.string());
      chunk.resize(static_cast<size_t>(n));
      if (n == 0 && !first) break;
      v1::FileEntry piece = e;
      piece.set_append(!first);
      piece.set_data(chunk);
      push(std::move(piece));
      first = false;
      if (n == 0) break;
    }
  }

  void push(v1::FileEntry e) {
    uint64_t size = e.data().size() + e.path().size() + e.link_target().size() + 64;
    if (batch_size_ + size > limits_.batch_bytes && batches_.back().entries_size() > 0) {
      batches_.emplace_back();
      batch_size_ = 0;
    }
    batch_size_ += size;
    *batches_.back().add_entries() = std::move(e);
  }

  fs::path top_;
  HostFileLimits limits_;
  std::vector<v1::PutFilesRequest> batches_;
  uint64_t batch_size_ = 0, bytes_ = 0;
  uint32_t entries_ = 0;
};

void walk(Batcher& b, const fs::path& dir, const std::string& rel) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  if (ec) throw std::runtime_error(fmt::format("listing {}: {}", dir.string(), ec.message()));
  std::vector<fs::path> children;
  for (; it != end; it.increment(ec)) {
    if (ec) throw std::runtime_error(fmt::format("listing {}: {}", dir.string(), ec.message()));
    children.push_back(it->path());
  }
  std::sort(children.begin(), children.end());
  for (const auto& child : children) {
    struct stat st {};
    if (::lstat(child.c_str(), &st) < 0) continue;  // gone meanwhile
    std::string name = rel.empty() ? child.filename().string() : rel + "/" + child.filename().string();
    b.add(name, st, child);
    if (S_ISDIR(st.st_mode)) walk(b, child, name);
  }
}

}  // namespace

std::vector<v1::PutFilesRequest> snapshot_host_path(const fs::path& host_path, const HostFileLimits& limits) {
  if (!host_path.is_absolute())
    throw std::runtime_error(fmt::format("host path '{}' is not absolute", host_path.string()));
  std::error_code ec;
  fs::path real = fs::canonical(host_path, ec);  // a top-level symlink is followed
  if (ec) throw std::runtime_error(fmt::format("host path {} of a mount: {}", host_path.string(), ec.message()));
  struct stat st {};
  if (::lstat(real.c_str(), &st) < 0)
    common::throw_errno(fmt::format("host path {} of a mount", host_path.string()));
  if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
    throw std::runtime_error(fmt::format("host path {} is neither a file nor a directory; VM pods can only get copies "
                                         "of files and directories",
                                         host_path.string()));
  Batcher b(host_path, limits);
  b.add("", st, real);
  if (S_ISDIR(st.st_mode)) walk(b, real, "");
  return b.take();
}

}  // namespace frakti::cri::shim
