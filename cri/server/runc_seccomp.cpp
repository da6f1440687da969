// The seccomp filter of a runc container from the CRI security contexts (oci_spec.hpp).
#include <sys/stat.h>

#include <algorithm>
#include <fstream>

#include "cri/server/errors.hpp"
#include "cri/server/oci_spec.hpp"
#include "cri/server/seccomp_default.hpp"

namespace frakti::cri {

namespace fs = std::filesystem;
using grpc::StatusCode;
using nlohmann::json;

namespace {

constexpr std::size_t kMaxProfileBytes = 1 << 20;

// Docker's profile format names architectures through archMap and conditions entries on
// capabilities and architectures (includes/excludes); runc reads only the OCI fields and
// would apply every entry unconditionally, so resolve them here for this host (x86_64).
void resolve_docker_format(json& profile, const std::vector<std::string>& caps,
                           const std::string& path) {
  if (profile.contains("archMap") && !profile.contains("architectures")) {
    json arches = json::array();
    if (!profile["archMap"].is_array())
      fail(StatusCode::INVALID_ARGUMENT, "seccomp profile {}: archMap is not a list", path);
    for (auto& a : profile["archMap"]) {
      if (!a.is_object()) continue;
      if (a.value("architecture", "") != "SCMP_ARCH_X86_64") continue;
      arches.push_back("SCMP_ARCH_X86_64");
      if (a.contains("subArchitectures") && a["subArchitectures"].is_array())
        for (auto& s : a["subArchitectures"]) arches.push_back(s);
    }
    profile["architectures"] = arches;
  }
  profile.erase("archMap");
  if (!profile.contains("syscalls")) return;
  if (!profile["syscalls"].is_array())
    fail(StatusCode::INVALID_ARGUMENT, "seccomp profile {}: syscalls is not a list", path);
  auto has_cap = [&](const json& c) {
    return c.is_string() && std::find(caps.begin(), caps.end(), c.get<std::string>()) != caps.end();
  };
  auto is_amd64 = [](const json& a) { return a == "amd64" || a == "x86_64"; };
  json kept = json::array();
  for (auto& s : profile["syscalls"]) {
    if (!s.is_object())
      fail(StatusCode::INVALID_ARGUMENT, "seccomp profile {}: a syscalls entry is not an object",
           path);
    bool keep = true;
    if (s.contains("includes") && s["includes"].is_object()) {
      auto& in = s["includes"];
      if (in.contains("caps") && in["caps"].is_array())
        for (auto& c : in["caps"]) keep = keep && has_cap(c);
      if (in.contains("arches") && in["arches"].is_array() && !in["arches"].empty())
        keep = keep && std::any_of(in["arches"].begin(), in["arches"].end(), is_amd64);
    }
    if (s.contains("excludes") && s["excludes"].is_object()) {
      auto& ex = s["excludes"];
      if (ex.contains("caps") && ex["caps"].is_array())
        for (auto& c : ex["caps"]) keep = keep && !has_cap(c);
      if (ex.contains("arches") && ex["arches"].is_array())
        keep = keep && std::none_of(ex["arches"].begin(), ex["arches"].end(), is_amd64);
    }
    if (!keep) continue;
    s.erase("includes");
    s.erase("excludes");
    s.erase("comment");
    // Docker's single "name" form.
    if (s.contains("name") && !s.contains("names")) s["names"] = json::array({s["name"]});
    s.erase("name");
    kept.push_back(s);
  }
  profile["syscalls"] = kept;
}

}  // namespace

nlohmann::json load_seccomp_profile(const std::string& path, const std::vector<std::string>& caps) {
  if (path.empty() || path[0] != '/' || path.find('\0') != std::string::npos)
    fail(StatusCode::INVALID_ARGUMENT,
         "seccomp profile '{}': a Localhost profile must be an absolute path on the host",
         path.substr(0, 256));
  struct stat sb;
  if (::stat(path.c_str(), &sb) != 0 || !S_ISREG(sb.st_mode))
    fail(StatusCode::INVALID_ARGUMENT, "seccomp profile {} is not a readable file on the host",
         path.substr(0, 256));
  if (static_cast<std::size_t>(sb.st_size) > kMaxProfileBytes)
    fail(StatusCode::INVALID_ARGUMENT, "seccomp profile {} is larger than {} bytes",
         path.substr(0, 256), kMaxProfileBytes);
  std::ifstream in(path, std::ios::binary);
  std::string text(kMaxProfileBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (!in.eof() && !in.good())
    fail(StatusCode::INVALID_ARGUMENT, "seccomp profile {} could not be read", path.substr(0, 256));
  if (text.size() > kMaxProfileBytes)
    fail(StatusCode::INVALID_ARGUMENT, "seccomp profile {} is larger than {} bytes",
         path.substr(0, 256), kMaxProfileBytes);
  json profile = json::parse(text, nullptr, false);
  if (profile.is_discarded() || !profile.is_object())
    fail(StatusCode::INVALID_ARGUMENT, "seccomp profile {} is not a JSON object",
         path.substr(0, 256));
  if (!profile.contains("defaultAction") || !profile["defaultAction"].is_string() ||
      profile["defaultAction"].get<std::string>().rfind("SCMP_ACT_", 0) != 0)
    fail(StatusCode::INVALID_ARGUMENT,
         "seccomp profile {} has no defaultAction (an SCMP_ACT_* string)", path.substr(0, 256));
  resolve_docker_format(profile, caps, path.substr(0, 256));
  return profile;
}

// kubelets before 1.19-era SecurityProfile still send the deprecated path fields.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace {

// The filter a CRI profile names (null: none). `what` names the asker in errors.
json profile_filter(const rt::SecurityProfile& p, const std::vector<std::string>& caps,
                    const std::string& what) {
  switch (p.profile_type()) {
    case rt::SecurityProfile::Unconfined:
      return nullptr;
    case rt::SecurityProfile::RuntimeDefault:
      return default_seccomp_profile(caps);
    case rt::SecurityProfile::Localhost:
      return load_seccomp_profile(p.localhost_ref(), caps);
    default:
      fail(StatusCode::INVALID_ARGUMENT,
           "{}: unknown seccomp profile type {} (use Unconfined, RuntimeDefault or Localhost)",
           what, static_cast<int>(p.profile_type()));
  }
}

// The pod's profile: its security context's, else its deprecated path's; unset is unconfined
// (containerd's rule; kubelet sends Unconfined anyway).
json pod_filter(const rt::PodSandboxConfig& pod, const std::vector<std::string>& caps) {
  const auto& psc = pod.linux().security_context();
  const std::string what = "pod " + pod.metadata().name();
  if (psc.has_seccomp()) return profile_filter(psc.seccomp(), caps, what);
  if (!psc.seccomp_profile_path().empty())
    return profile_filter(legacy_seccomp_profile(psc.seccomp_profile_path()), caps, what);
  return nullptr;
}

}  // namespace

nlohmann::json container_seccomp(const rt::PodSandboxConfig& pod, const rt::ContainerConfig& c,
                                 const std::vector<std::string>& caps) {
  const auto& sc = c.linux().security_context();
  if (sc.privileged()) return nullptr;  // as containerd and CRI-O: privileged means no filter
  // The container's own profile, then the deprecated path, then the pod's as the default.
  if (sc.has_seccomp())
    return profile_filter(sc.seccomp(), caps, "container " + c.metadata().name());
  if (!sc.seccomp_profile_path().empty())
    return profile_filter(legacy_seccomp_profile(sc.seccomp_profile_path()), caps,
                          "container " + c.metadata().name());
  return pod_filter(pod, caps);
}

nlohmann::json sandbox_seccomp(const rt::PodSandboxConfig& pod) {
  if (pod.linux().security_context().privileged()) return nullptr;
  return pod_filter(pod, {});  // frakti-pause holds no capabilities
}

#pragma GCC diagnostic pop

rt::SecurityProfile legacy_seccomp_profile(const std::string& value) {
  rt::SecurityProfile p;
  if (value == "unconfined") {
    p.set_profile_type(rt::SecurityProfile::Unconfined);
  } else if (value == "runtime/default" || value == "docker/default") {
    p.set_profile_type(rt::SecurityProfile::RuntimeDefault);
  } else if (value.rfind("localhost/", 0) == 0) {
    p.set_profile_type(rt::SecurityProfile::Localhost);
    // kubelet joined "localhost/" and an absolute path ("localhost//var/lib/..."); accept
    // both that and a single slash.
    std::string rest = value.substr(std::string("localhost/").size());
    p.set_localhost_ref(rest.rfind('/', 0) == 0 ? rest : "/" + rest);
  } else {
    fail(StatusCode::INVALID_ARGUMENT,
         "seccomp profile '{}' is not unconfined, runtime/default, docker/default or "
         "localhost/<absolute path>",
         value.substr(0, 256));
  }
  return p;
}

}  // namespace frakti::cri
