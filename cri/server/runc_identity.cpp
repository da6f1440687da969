// Who a runc container runs as: user and group ids resolved from the image's own /etc/passwd
// and /etc/group (read confined to the rootfs), and its capability sets.

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "common/fd.hpp"
#include "cri/server/errors.hpp"
#include "cri/server/oci_spec.hpp"
#include "sandbox/container_spec.hpp"

namespace frakti::cri {

namespace fs = std::filesystem;
using grpc::StatusCode;

namespace {
// Capability numbers as in <linux/capability.h>; the index is the bit.
constexpr const char* kCapNames[] = {"CHOWN",
                                     "DAC_OVERRIDE",
                                     "DAC_READ_SEARCH",
                                     "FOWNER",
                                     "FSETID",
                                     "KILL",
                                     "SETGID",
                                     "SETUID",
                                     "SETPCAP",
                                     "LINUX_IMMUTABLE",
                                     "NET_BIND_SERVICE",
                                     "NET_BROADCAST",
                                     "NET_ADMIN",
                                     "NET_RAW",
                                     "IPC_LOCK",
                                     "IPC_OWNER",
                                     "SYS_MODULE",
                                     "SYS_RAWIO",
                                     "SYS_CHROOT",
                                     "SYS_PTRACE",
                                     "SYS_PACCT",
                                     "SYS_ADMIN",
                                     "SYS_BOOT",
                                     "SYS_NICE",
                                     "SYS_RESOURCE",
                                     "SYS_TIME",
                                     "SYS_TTY_CONFIG",
                                     "MKNOD",
                                     "LEASE",
                                     "AUDIT_WRITE",
                                     "AUDIT_CONTROL",
                                     "SETFCAP",
                                     "MAC_OVERRIDE",
                                     "MAC_ADMIN",
                                     "SYSLOG",
                                     "WAKE_ALARM",
                                     "BLOCK_SUSPEND",
                                     "AUDIT_READ",
                                     "PERFMON",
                                     "BPF",
                                     "CHECKPOINT_RESTORE"};

std::string cap_name(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
  if (s == "ALL") return s;
  if (s.rfind("CAP_", 0) != 0) s = "CAP_" + s;
  for (auto* n : kCapNames)
    if (s.substr(4) == n) return s;
  fail(StatusCode::INVALID_ARGUMENT, "unknown capability '{}'",
       s.size() > 64 ? s.substr(0, 64) + "..." : s);
}

bool all_digits(const std::string& s) {
  return !s.empty() && s.size() < 11 && std::all_of(s.begin(), s.end(), ::isdigit);
}

uint32_t to_id(const std::string& s, const std::string& spec) {
  unsigned long v = std::stoul(s);
  if (v > 0xfffffffeUL)
    fail(StatusCode::INVALID_ARGUMENT, "user '{}': id {} is out of range", spec, s);
  return static_cast<uint32_t>(v);
}

// name:x:id:... lines of a passwd or group file, split on ':'.
std::vector<std::vector<std::string>> colon_lines(const std::string& text) {
  std::vector<std::vector<std::string>> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> f;
    size_t start = 0;
    for (;;) {
      size_t p = line.find(':', start);
      f.push_back(line.substr(start, p == std::string::npos ? std::string::npos : p - start));
      if (p == std::string::npos) break;
      start = p + 1;
    }
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace

std::string read_in_root(const fs::path& rootfs, const char* rel) {
  common::Fd root(::open(rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) return {};
  open_how how{};
  how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  common::Fd fd(static_cast<int>(::syscall(SYS_openat2, root.get(), rel, &how, sizeof how)));
  if (!fd) return {};
  struct stat sb;
  if (::fstat(fd.get(), &sb) != 0 || !S_ISREG(sb.st_mode)) return {};
  std::string out;
  char buf[8192];
  ssize_t n;
  while ((n = ::read(fd.get(), buf, sizeof buf)) > 0 && out.size() < (4u << 20))
    out.append(buf, static_cast<size_t>(n));
  return out;
}

std::vector<std::string> bounding_capabilities() {
  std::ifstream in("/proc/self/status");
  std::string line;
  uint64_t mask = 0;
  while (std::getline(in, line))
    if (line.rfind("CapBnd:", 0) == 0) mask = std::stoull(line.substr(7), nullptr, 16);
  std::vector<std::string> out;
  for (size_t bit = 0; bit < std::size(kCapNames); ++bit)
    if (mask & (uint64_t{1} << bit)) out.push_back(std::string("CAP_") + kCapNames[bit]);
  return out;
}

std::vector<std::string> container_capabilities(const rt::Capability& c) {
  std::vector<std::string> caps = sandbox::default_capabilities();
  for (auto& d : c.drop_capabilities()) {
    std::string n = cap_name(d);
    if (n == "ALL")
      caps.clear();
    else
      std::erase(caps, n);
  }
  for (auto& a : c.add_capabilities()) {
    std::string n = cap_name(a);
    if (n == "ALL") {
      caps = bounding_capabilities();
    } else if (std::find(caps.begin(), caps.end(), n) == caps.end()) {
      caps.push_back(n);
    }
  }
  return caps;
}

ResolvedUser resolve_user(const std::string& spec, const std::string& passwd,
                          const std::string& group) {
  ResolvedUser u;
  if (spec.empty()) return u;
  if (spec.size() > 256)
    fail(StatusCode::INVALID_ARGUMENT, "user '{}...' is too long", spec.substr(0, 32));
  auto colon = spec.find(':');
  std::string user = spec.substr(0, colon),
              grp = colon == std::string::npos ? "" : spec.substr(colon + 1);
  if (user.empty() || (colon != std::string::npos && grp.empty()))
    fail(StatusCode::INVALID_ARGUMENT, "user '{}' is not 'user', 'uid', 'user:group' or 'uid:gid'",
         spec);
  std::string name;
  bool found = false;
  for (auto& f : colon_lines(passwd)) {
    if (f.size() < 4 || !all_digits(f[2]) || !all_digits(f[3])) continue;
    if ((all_digits(user) && f[2] == std::to_string(std::stoul(user))) || f[0] == user) {
      u.uid = to_id(f[2], spec);
      u.gid = to_id(f[3], spec);
      name = f[0];
      found = true;
      break;
    }
  }
  if (!found) {
    if (!all_digits(user))
      fail(StatusCode::INVALID_ARGUMENT,
           "user '{}' is not in the image's /etc/passwd; give a numeric uid", user);
    u.uid = to_id(user, spec);
  }
  auto groups = colon_lines(group);
  if (!grp.empty()) {
    if (all_digits(grp)) {
      u.gid = to_id(grp, spec);
    } else {
      bool g = false;
      for (auto& f : groups)
        if (f.size() >= 3 && f[0] == grp && all_digits(f[2])) {
          u.gid = to_id(f[2], spec);
          g = true;
          break;
        }
      if (!g)
        fail(StatusCode::INVALID_ARGUMENT,
             "group '{}' is not in the image's /etc/group; give a numeric gid", grp);
    }
  }
  // Docker: the user's memberships in the image's /etc/group are supplementary groups.
  if (!name.empty()) {
    for (auto& f : groups) {
      if (f.size() < 4 || !all_digits(f[2])) continue;
      std::istringstream members(f[3]);
      std::string m;
      while (std::getline(members, m, ','))
        if (m == name) {
          uint32_t gid = to_id(f[2], spec);
          if (gid != u.gid && std::find(u.groups.begin(), u.groups.end(), gid) == u.groups.end())
            u.groups.push_back(gid);
        }
    }
  }
  return u;
}

}  // namespace frakti::cri
