// Handler: PutFiles, the copies of host paths a container mounts (guest_abi::kGuestHostFilesDir).
// Everything here is written below <state dir>/files/<container>/<index>; entry paths are
// checked one component at a time and resolved like a chroot at the index directory, so no
// entry (nor a symlink sent before it) can reach outside.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "agent/agent_error.hpp"
#include "agent/container/safe_path.hpp"
#include "agent/container/spec.hpp"
#include "agent/service/agent_service.hpp"
#include "common/error.hpp"
#include "common/fd.hpp"

namespace frakti::agent::service {

namespace {

constexpr int kMaxEntries = 20000;
constexpr uint32_t kMaxIndex = 1024;

// "" or components of [^/\0] that are not "." or "..", at most 4096 bytes.
bool valid_entry_path(const std::string& p) {
  if (p.empty()) return true;
  if (p.size() > 4096 || p.find('\0') != std::string::npos || p.front() == '/' || p.back() == '/') return false;
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string::npos) end = p.size();
    std::string_view part(p.data() + start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

void write_entry(const std::string& base, const v1::FileEntry& e) {
  std::string path = e.path().empty() ? base : container::resolve_in_root(base, e.path());
  mode_t mode = e.mode() & 07777;
  switch (e.kind()) {
    case v1::FileEntry::KIND_DIRECTORY:
      if (::mkdir(path.c_str(), 0700) < 0 && errno != EEXIST) common::throw_errno("create directory " + path);
      if (::chmod(path.c_str(), mode) < 0) common::throw_errno("chmod " + path);
      break;
    case v1::FileEntry::KIND_SYMLINK:
      if (e.link_target().empty() || e.link_target().find('\0') != std::string::npos)
        throw AgentError(v1::Error::CODE_INVALID_ARGUMENT, "put_files: symlink " + e.path() + " has no valid target");
      if (::symlink(e.link_target().c_str(), path.c_str()) < 0) common::throw_errno("create symlink " + path);
      break;
    case v1::FileEntry::KIND_FILE: {
      int flags = O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (e.append() ? O_APPEND : O_TRUNC);
      common::Fd fd(::open(path.c_str(), flags, 0600));
      if (!fd) common::throw_errno("create file " + path);
      common::write_all(fd.get(), e.data().data(), e.data().size(), path.c_str());
      if (::fchmod(fd.get(), mode) < 0) common::throw_errno("chmod " + path);
      break;
    }
    default:
      throw AgentError(v1::Error::CODE_INVALID_ARGUMENT, "put_files: entry " + e.path() + " has an unknown kind");
  }
  if (::lchown(path.c_str(), e.uid(), e.gid()) < 0) common::throw_errno("chown " + path);
}

}  // namespace

void AgentService::put_files(Session&, const Request& r, Responder resp) {
  guarded("PutFiles", resp, [&] {
    const auto& req = r.put_files();
    if (!container::valid_id(req.container_id()))
      throw AgentError(v1::Error::CODE_INVALID_ARGUMENT, "put_files: container id is not valid");
    if (req.index() >= kMaxIndex)
      throw AgentError(v1::Error::CODE_INVALID_ARGUMENT, fmt::format("put_files: index {} is too large", req.index()));
    if (req.entries_size() > kMaxEntries)
      throw AgentError(v1::Error::CODE_INVALID_ARGUMENT, fmt::format("put_files: {} entries in one request", req.entries_size()));
    for (const auto& e : req.entries()) {
      if (!valid_entry_path(e.path()))
        throw AgentError(v1::Error::CODE_INVALID_ARGUMENT,
                         fmt::format("put_files: entry path '{}' is not a relative path without '..'", e.path().substr(0, 128)));
    }
    std::string dir = host_files_dir(req.container_id());
    std::filesystem::create_directories(dir);
    std::string base = fmt::format("{}/{}", dir, req.index());
    for (const auto& e : req.entries()) write_entry(base, e);
    v1::Response response;
    response.mutable_put_files();
    resp(response);
  });
}

std::string AgentService::host_files_dir(const std::string& container_id) const {
  return options_.state_dir + "/files/" + container_id;
}

}  // namespace frakti::agent::service
