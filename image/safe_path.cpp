#include "image/safe_path.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>

#include <fmt/format.h>

#include "common/error.hpp"

namespace frakti::image {

std::string CleanPath::str() const {
  std::string s;
  for (auto& p : parts) {
    if (!s.empty()) s.push_back('/');
    s += p;
  }
  return s;
}

std::string CleanPath::parent() const {
  std::string s;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    if (!s.empty()) s.push_back('/');
    s += parts[i];
  }
  return s;
}

bool clean_entry_path(std::string_view raw, CleanPath& out, std::string& why) {
  out = CleanPath{};
  if (raw.size() >= PATH_MAX) {
    why = fmt::format("name is {} bytes long (limit {})", raw.size(), PATH_MAX - 1);
    return false;
  }
  if (raw.find('\0') != std::string_view::npos) {
    why = "name contains a NUL byte";
    return false;
  }
  out.was_absolute = !raw.empty() && raw.front() == '/';
  size_t i = 0;
  while (i <= raw.size()) {
    size_t j = raw.find('/', i);
    if (j == std::string_view::npos) j = raw.size();
    std::string_view part = raw.substr(i, j - i);
    if (part == "..") {
      why = "name contains \"..\"";
      return false;
    }
    if (part.size() > NAME_MAX) {
      why = fmt::format("a path component is {} bytes long (limit {})", part.size(), NAME_MAX);
      return false;
    }
    if (!part.empty() && part != ".") out.parts.emplace_back(part);
    i = j + 1;
  }
  return true;
}

namespace {

int openat2_path(int dirfd, const std::string& path, uint64_t resolve) {
  open_how how{};
  how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  how.resolve = resolve;
  return static_cast<int>(common::retry_eintr(
      [&] { return ::syscall(SYS_openat2, dirfd, path.empty() ? "." : path.c_str(), &how, sizeof how); }));
}

}  // namespace

common::Fd open_dir_in_root(int root_fd, const std::string& rel, bool create, bool* escaped) {
  constexpr uint64_t in_root = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  int fd = openat2_path(root_fd, rel, in_root);
  if (fd < 0 && errno == ENOENT && create) {
    // Walk down, creating what is missing; each step re-resolves from the root.
    std::string prefix;
    size_t i = 0;
    while (i < rel.size()) {
      size_t j = rel.find('/', i);
      if (j == std::string::npos) j = rel.size();
      std::string part = rel.substr(i, j - i);
      common::Fd parent(openat2_path(root_fd, prefix, in_root));
      if (!parent) common::throw_errno(fmt::format("open directory \"{}\" in the image root", prefix));
      std::string next = prefix.empty() ? part : prefix + "/" + part;
      common::Fd probe(openat2_path(root_fd, next, in_root));
      if (!probe) {
        if (errno != ENOENT) common::throw_errno(fmt::format("open directory \"{}\" in the image root", next));
        // A dangling symlink here would make mkdirat fail with EEXIST: reported, not followed.
        common::Fd pdir(::openat(parent.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!pdir) common::throw_errno(fmt::format("open directory \"{}\"", prefix));
        if (::mkdirat(pdir.get(), part.c_str(), 0755) < 0 && errno != EEXIST) {
          common::throw_errno(fmt::format("create directory \"{}\"", next));
        }
      }
      prefix = next;
      i = j + 1;
    }
    fd = openat2_path(root_fd, rel, in_root);
  }
  if (fd < 0) common::throw_errno(fmt::format("open directory \"{}\" in the image root", rel));
  if (escaped) {
    common::Fd beneath(openat2_path(root_fd, rel, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS));
    *escaped = !beneath && errno == EXDEV;
  }
  return common::Fd(fd);
}

void remove_tree_at(int dir_fd, const std::string& name) {
  struct stat st{};
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
    if (errno == ENOENT) return;
    common::throw_errno(fmt::format("stat \"{}\"", name));
  }
  if (S_ISDIR(st.st_mode)) {
    int fd = ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) common::throw_errno(fmt::format("open directory \"{}\" for removal", name));
    DIR* d = ::fdopendir(fd);
    if (!d) {
      ::close(fd);
      common::throw_errno(fmt::format("fdopendir \"{}\"", name));
    }
    std::vector<std::string> children;
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") children.push_back(std::move(n));
    }
    for (auto& c : children) {
      try {
        remove_tree_at(::dirfd(d), c);
      } catch (...) {
        ::closedir(d);
        throw;
      }
    }
    ::closedir(d);
    if (::unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR) < 0 && errno != ENOENT) {
      common::throw_errno(fmt::format("remove directory \"{}\"", name));
    }
    return;
  }
  if (::unlinkat(dir_fd, name.c_str(), 0) < 0 && errno != ENOENT) common::throw_errno(fmt::format("remove \"{}\"", name));
}

}  // namespace frakti::image
