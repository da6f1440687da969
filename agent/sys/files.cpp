#include "agent/sys/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace frakti::agent::sys {

namespace {
std::string read_all(int fd, const std::string& path, size_t limit) {
  std::string text;
  char buf[8192];
  for (;;) {
    ssize_t n = common::retry_eintr([&] { return ::read(fd, buf, sizeof buf); });
    if (n < 0) common::throw_errno(fmt::format("read {}", path));
    if (n == 0) return text;
    if (text.size() + static_cast<size_t>(n) > limit) {
      common::throw_error(EFBIG, fmt::format("read {}: larger than {} bytes", path, limit));
    }
    text.append(buf, static_cast<size_t>(n));
  }
}
}  // namespace

std::string read_file(const std::string& path, size_t limit) {
  common::Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) common::throw_errno(fmt::format("open {}", path));
  return read_all(fd.get(), path, limit);
}

std::optional<std::string> try_read_file(const std::string& path, size_t limit) {
  common::Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return std::nullopt;
  return read_all(fd.get(), path, limit);
}

void write_file(const std::string& path, std::string_view text) {
  common::Fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) common::throw_errno(fmt::format("open {} for writing", path));
  ssize_t n = common::retry_eintr([&] { return ::write(fd.get(), text.data(), text.size()); });
  if (n < 0) common::throw_errno(fmt::format("write '{}' to {}", text, path));
  if (static_cast<size_t>(n) != text.size()) {
    common::throw_error(EIO, fmt::format("write '{}' to {}: short write", text, path));
  }
}

void replace_file(const std::string& path, std::string_view text, unsigned mode) {
  std::string tmp = path + ".new";
  {
    common::Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
    if (!fd) common::throw_errno(fmt::format("create {}", tmp));
    common::write_all(fd.get(), text.data(), text.size(), tmp.c_str());
  }
  if (::rename(tmp.c_str(), path.c_str()) < 0) common::throw_errno(fmt::format("rename {} to {}", tmp, path));
}

void make_dirs(const std::string& path, unsigned mode) {
  if (path.empty()) return;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    std::string prefix = path.substr(0, pos);
    if (prefix.empty()) continue;
    if (::mkdir(prefix.c_str(), mode) < 0 && errno != EEXIST) {
      common::throw_errno(fmt::format("mkdir {}", prefix));
    }
  }
}

std::string_view trim_right(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\t' ||
                           text.back() == '\r' || text.back() == '\0')) {
    text.remove_suffix(1);
  }
  return text;
}

}  // namespace frakti::agent::sys
