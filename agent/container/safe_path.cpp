#include "agent/container/safe_path.hpp"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace frakti::agent::container {

namespace {

// Splits a path into its non-empty, non-"." components.
std::vector<std::string> components(std::string_view path) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(pos, end - pos);
    if (!part.empty() && part != ".") out.emplace_back(part);
    pos = end + 1;
  }
  return out;
}

std::string join(const std::string& root, const std::vector<std::string>& parts) {
  std::string out = root;
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  for (const auto& p : parts) out += "/" + p;
  return out;
}

}  // namespace

std::string resolve_in_root(const std::string& root, std::string_view unsafe) {
  std::vector<std::string> done;  // resolved components, relative to root
  std::vector<std::string> todo = components(unsafe);
  std::reverse(todo.begin(), todo.end());  // a stack: back() is the next component
  int links = 0;
  bool missing = false;  // once a component is missing, the rest is appended lexically
  while (!todo.empty()) {
    std::string part = std::move(todo.back());
    todo.pop_back();
    if (part == "..") {
      if (!done.empty()) done.pop_back();
      continue;
    }
    done.push_back(part);
    if (missing) continue;
    std::string path = join(root, done);
    struct stat st {};
    if (::lstat(path.c_str(), &st) < 0) {
      if (errno != ENOENT) common::throw_errno(fmt::format("lstat {}", path));
      missing = true;
      continue;
    }
    if (S_ISLNK(st.st_mode)) {
      if (++links > 255)
        common::throw_error(ELOOP,
                            fmt::format("resolve {} inside {}: too many symlinks", unsafe, root));
      char target[PATH_MAX];
      ssize_t n = ::readlink(path.c_str(), target, sizeof target - 1);
      if (n < 0) common::throw_errno(fmt::format("readlink {}", path));
      std::string_view t(target, static_cast<size_t>(n));
      done.pop_back();
      if (!t.empty() && t[0] == '/') done.clear();
      auto more = components(t);
      for (auto it = more.rbegin(); it != more.rend(); ++it) todo.push_back(*it);
      continue;
    }
    if (!todo.empty() && !S_ISDIR(st.st_mode)) {
      common::throw_error(
          ENOTDIR, fmt::format("resolve {} inside {}: {} is not a directory", unsafe, root, path));
    }
  }
  return join(root, done);
}

std::string create_in_root(const std::string& root, std::string_view unsafe, bool as_file) {
  // Every existing component is resolved (symlinks included); what remains does not exist
  // yet and is created one plain directory at a time, so nothing can redirect it (nothing
  // runs in the container while its mounts are made).
  std::string path = resolve_in_root(root, unsafe);
  std::string base = resolve_in_root(root, "/");
  auto parts = components(std::string_view(path).substr(base.size()));
  std::string current = base;
  for (size_t i = 0; i < parts.size(); ++i) {
    current += "/" + parts[i];
    bool last = i + 1 == parts.size();
    if (last && as_file) {
      common::Fd fd(::open(current.c_str(), O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644));
      if (!fd && errno != EISDIR) common::throw_errno(fmt::format("create {}", current));
    } else if (::mkdir(current.c_str(), 0755) < 0 && errno != EEXIST) {
      common::throw_errno(fmt::format("mkdir {}", current));
    }
  }
  std::string again = resolve_in_root(root, unsafe);
  if (again != path) {
    common::throw_error(EXDEV,
                        fmt::format("{} inside {} changed while it was created", unsafe, root));
  }
  return path;
}

}  // namespace frakti::agent::container
