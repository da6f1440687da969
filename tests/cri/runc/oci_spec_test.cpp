// OCI specs of runc pods: what runc is told for each CRI setting, and the refusals (hostile
// and invalid values) that must never reach runc.

#include "cri/server/oci_spec.hpp"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <functional>

#include "cri/server/errors.hpp"


// The deprecated seccomp_profile_path fields are exercised on purpose.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
using namespace frakti::cri;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

rt::PodSandboxConfig pod(rt::NamespaceMode net = rt::POD, rt::NamespaceMode pid = rt::POD,
                         rt::NamespaceMode ipc = rt::POD) {
  rt::PodSandboxConfig p;
  p.mutable_metadata()->set_name("p");
  p.set_hostname("podhost");
  auto* ns = p.mutable_linux()->mutable_security_context()->mutable_namespace_options();
  ns->set_network(net);
  ns->set_pid(pid);
  ns->set_ipc(ipc);
  return p;
}

frakti::image::ImageConfig image() {
  frakti::image::ImageConfig i;
  i.cmd = {"sh"};
  i.env = {"PATH=/usr/bin:/bin"};
  return i;
}

rt::ContainerConfig container() {
  rt::ContainerConfig c;
  c.mutable_metadata()->set_name("c");
  c.add_command("/bin/true");
  return c;
}

grpc::StatusCode code_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const CriError& e) {
    return e.code();
  }
  return grpc::StatusCode::OK;
}

bool has(const json& list, const std::string& s) {
  for (auto& x : list)
    if (x == s) return true;
  return false;
}

const json* find_ns(const json& spec, const std::string& type) {
  for (auto& n : spec["linux"]["namespaces"])
    if (n["type"] == type) return &n;
  return nullptr;
}

const json* find_mount(const json& spec, const std::string& dest) {
  for (auto& m : spec["mounts"])
    if (m["destination"] == dest) return &m;
  return nullptr;
}

const PodPaths kPaths{4242, "/run/x/resolv.conf", "/run/x/hostname", {}};

}  // namespace

TEST_CASE("resolve_user: names, numbers, groups and hostile passwd files", "[cri][runc]") {
  std::string passwd =
      "root:x:0:0:root:/root:/bin/sh\n# "
      "comment\nwww:x:33:33::/:/bin/false\nbad:x:notanumber:1::/:\n"
      "broken\nfour:x:4\n";
  std::string group =
      "root:x:0:\nwww:x:33:\nextra:x:500:www,other\nvideo:x:44:www\nbig:x:99999999999:www\n";
  auto u = resolve_user("www", passwd, group);
  CHECK(u.uid == 33);
  CHECK(u.gid == 33);
  CHECK(u.groups ==
        std::vector<uint32_t>{500, 44});  // 99999999999 is out of range: skipped as not digits<11
  CHECK(resolve_user("", passwd, group).uid == 0);
  auto n = resolve_user("1000", passwd, group);  // a uid not in passwd runs with gid 0
  CHECK(n.uid == 1000);
  CHECK(n.gid == 0);
  CHECK(resolve_user("33", passwd, group).gid == 33);  // found by number: passwd's gid
  CHECK(resolve_user("1000:5", passwd, group).gid == 5);
  CHECK(resolve_user("www:video", passwd, group).gid == 44);
  CHECK(resolve_user("0", "", "").uid == 0);  // an image without /etc/passwd

  struct Bad {
    const char* spec;
  } bad[] = {{"nobody"},     {"www:nogroup"}, {":"},   {"www:"},  {":33"},
             {"4294967295"}, {"99999999999"}, {"bad"}, {"broken"}};
  for (auto& b : bad) {
    INFO(b.spec);
    CHECK(code_of([&] { resolve_user(b.spec, passwd, group); }) ==
          grpc::StatusCode::INVALID_ARGUMENT);
  }
  CHECK(code_of([&] { resolve_user(std::string(300, 'a'), passwd, group); }) ==
        grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_CASE("pod_sysctls: namespaced ones pass, node-wide and host-namespace ones are refused",
          "[cri][runc]") {
  auto p = pod();
  (*p.mutable_linux()->mutable_sysctls())["net.ipv4.ip_unprivileged_port_start"] = "100";
  (*p.mutable_linux()->mutable_sysctls())["kernel/shm_rmid_forced"] = "1";
  (*p.mutable_linux()->mutable_sysctls())["fs.mqueue.msg_max"] = "20";
  auto s = pod_sysctls(p);
  CHECK(s.at("net.ipv4.ip_unprivileged_port_start") == "100");
  CHECK(s.at("kernel.shm_rmid_forced") == "1");
  CHECK(s.size() == 3);

  struct Case {
    const char* name;
    const char* value;
    rt::PodSandboxConfig pod;
  } cases[] = {
      {"kernel.panic", "1", pod()},                             // node-wide
      {"vm.overcommit_memory", "1", pod()},                     // node-wide
      {"net.ipv4.ip_forward", "1", pod(rt::NODE)},              // host network
      {"kernel.shmmax", "1", pod(rt::POD, rt::POD, rt::NODE)},  // host IPC
      {"kernel.hostname", "x", pod(rt::NODE)},                  // host UTS
      {"net..x", "1", pod()},
      {".net.x", "1", pod()},
      {"net.ipv4.$(reboot)", "1", pod()},
      {"", "1", pod()},
      {"net.ipv4.ip_forward", "1\nkernel.panic=1", pod()},
  };
  for (auto& c : cases) {
    INFO(c.name);
    (*c.pod.mutable_linux()->mutable_sysctls())[c.name] = c.value;
    CHECK(code_of([&] { pod_sysctls(c.pod); }) == grpc::StatusCode::INVALID_ARGUMENT);
  }
}

TEST_CASE("cgroups_path: under the pod's cgroup_parent or /frakti, cgroupfs syntax only",
          "[cri][runc]") {
  auto p = pod();
  CHECK(cgroups_path(p, "abc") == "/frakti/abc");
  p.mutable_linux()->set_cgroup_parent("/kubepods/besteffort/pod1/");
  CHECK(cgroups_path(p, "abc") == "/kubepods/besteffort/pod1/abc");
  for (const char* bad :
       {"kubepods", "/kubepods/../../etc", "kubepods-besteffort.slice", "/a/b.slice"}) {
    INFO(bad);
    p.mutable_linux()->set_cgroup_parent(bad);
    CHECK(code_of([&] { cgroups_path(p, "abc"); }) == grpc::StatusCode::INVALID_ARGUMENT);
  }
}

TEST_CASE("container_capabilities: Docker's defaults with CRI drops and adds", "[cri][runc]") {
  rt::Capability c;
  auto d = container_capabilities(c);
  CHECK(has(json(d), "CAP_CHOWN"));
  CHECK_FALSE(has(json(d), "CAP_SYS_ADMIN"));
  c.add_add_capabilities("sys_admin");
  c.add_drop_capabilities("CAP_CHOWN");
  d = container_capabilities(c);
  CHECK(has(json(d), "CAP_SYS_ADMIN"));
  CHECK_FALSE(has(json(d), "CAP_CHOWN"));
  rt::Capability none;
  none.add_drop_capabilities("ALL");
  CHECK(container_capabilities(none).empty());
  for (const char* bad : {"CAP_FLY", "", "CAP_", "SYS_ADMIN\n"}) {
    rt::Capability b;
    b.add_add_capabilities(bad);
    INFO(bad);
    CHECK(code_of([&] { container_capabilities(b); }) == grpc::StatusCode::INVALID_ARGUMENT);
  }
  auto bnd = bounding_capabilities();
  CHECK(has(json(bnd),
            "CAP_CHOWN"));  // every Linux process may hold CAP_CHOWN in its bounding set here
}

TEST_CASE("infra_spec: the namespaces the pod does not share with the host, hostname, sysctls",
          "[cri][runc]") {
  auto p = pod();
  (*p.mutable_linux()->mutable_sysctls())["net.ipv4.ip_unprivileged_port_start"] = "100";
  auto s = infra_spec(p, "/r/rootfs", "/frakti/x");
  for (auto* t : {"network", "ipc", "pid", "uts", "mount"}) {
    INFO(t);
    REQUIRE(find_ns(s, t));
    CHECK_FALSE(find_ns(s, t)->contains("path"));
  }
  CHECK(s["hostname"] == "podhost");
  CHECK(s["process"]["args"] == json::array({"/frakti-pause"}));
  CHECK(s["root"]["readonly"] == true);
  CHECK(s["linux"]["sysctl"]["net.ipv4.ip_unprivileged_port_start"] == "100");
  CHECK(s["linux"]["cgroupsPath"] == "/frakti/x");

  auto host = infra_spec(pod(rt::NODE, rt::NODE, rt::NODE), "/r", "/frakti/x");
  CHECK_FALSE(find_ns(host, "network"));
  CHECK_FALSE(find_ns(host, "pid"));
  CHECK_FALSE(find_ns(host, "ipc"));
  CHECK_FALSE(find_ns(host, "uts"));
  CHECK_FALSE(host.contains("hostname"));
}

TEST_CASE("container_spec: namespaces, mounts, resources, security", "[cri][runc]") {
  char dir[] = "/tmp/oci-spec-XXXXXX";
  REQUIRE(::mkdtemp(dir));
  fs::path rootfs = dir;
  fs::create_directories(rootfs / "etc");
  std::ofstream(rootfs / "etc" / "passwd") << "root:x:0:0::/:/bin/sh\napp:x:1000:1000::/:/bin/sh\n";
  std::ofstream(rootfs / "etc" / "group") << "app:x:1000:\nwheel:x:10:app\n";

  auto p = pod();
  auto c = container();
  c.mutable_linux()->mutable_resources()->set_memory_limit_in_bytes(64 << 20);
  c.mutable_linux()->mutable_resources()->set_cpu_quota(50000);
  c.mutable_linux()->mutable_resources()->set_cpu_period(100000);
  c.mutable_linux()->mutable_resources()->set_cpu_shares(512);
  c.mutable_linux()->mutable_security_context()->set_run_as_username("app");
  c.mutable_linux()->mutable_security_context()->set_readonly_rootfs(true);
  auto* m = c.add_mounts();
  m->set_host_path(dir);
  m->set_container_path("/data");
  m->set_readonly(true);
  m->set_propagation(rt::PROPAGATION_HOST_TO_CONTAINER);
  auto* env = c.add_envs();
  env->set_key("A");
  env->set_value("b");

  auto s = container_spec(p, c, image(), rootfs, kPaths, "/frakti/c1");
  CHECK(s["process"]["args"] == json::array({"/bin/true"}));
  CHECK(has(s["process"]["env"], "A=b"));
  CHECK(has(s["process"]["env"], "HOSTNAME=podhost"));
  CHECK(s["process"]["user"]["uid"] == 1000);
  CHECK(s["process"]["user"]["gid"] == 1000);
  CHECK(s["process"]["user"]["additionalGids"] == json::array({10}));
  CHECK(s["root"]["readonly"] == true);
  CHECK(s["process"]["terminal"] == false);
  auto tty = c;
  tty.set_tty(true);
  CHECK(container_spec(p, tty, image(), rootfs, kPaths, "/f/c")["process"]["terminal"] == true);
  CHECK(find_ns(s, "network")->at("path") == "/proc/4242/ns/net");
  CHECK(find_ns(s, "ipc")->at("path") == "/proc/4242/ns/ipc");
  CHECK(find_ns(s, "uts")->at("path") == "/proc/4242/ns/uts");
  CHECK(find_ns(s, "pid")->at("path") == "/proc/4242/ns/pid");  // the CRI default (0) is POD
  REQUIRE(find_mount(s, "/data"));
  CHECK(find_mount(s, "/data")->at("options") == json::array({"rbind", "rslave", "ro"}));
  CHECK(find_mount(s, "/etc/resolv.conf")->at("source") == "/run/x/resolv.conf");
  CHECK(find_mount(s, "/etc/hostname")->at("source") == "/run/x/hostname");
  CHECK(find_mount(s, "/sys")->at("options").back() == "ro");
  CHECK(s["linux"]["resources"]["memory"]["limit"] == 64 << 20);
  CHECK(s["linux"]["resources"]["cpu"]["quota"] == 50000);
  CHECK(s["linux"]["resources"]["cpu"]["shares"] == 512);
  CHECK(has(s["linux"]["maskedPaths"], "/proc/kcore"));
  CHECK(has(s["linux"]["readonlyPaths"], "/proc/sys"));
  CHECK_FALSE(has(s["process"]["capabilities"]["bounding"], "CAP_SYS_ADMIN"));

  SECTION("PID modes") {
    c.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(rt::POD);
    CHECK(find_ns(container_spec(p, c, image(), rootfs, kPaths, "/f/c"), "pid")->at("path") ==
          "/proc/4242/ns/pid");
    c.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(
        rt::CONTAINER);
    CHECK_FALSE(
        find_ns(container_spec(p, c, image(), rootfs, kPaths, "/f/c"), "pid")->contains("path"));
    CHECK_FALSE(
        find_ns(container_spec(pod(rt::POD, rt::NODE), c, image(), rootfs, kPaths, "/f/c"), "pid"));
    c.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(rt::TARGET);
    // Without a resolved target (the backend found none running) nothing is built.
    CHECK(code_of([&] { container_spec(p, c, image(), rootfs, kPaths, "/f/c"); }) ==
          grpc::StatusCode::FAILED_PRECONDITION);
    auto with_target = kPaths;
    with_target.target_pid = 777;
    CHECK(find_ns(container_spec(p, c, image(), rootfs, with_target, "/f/c"), "pid")->at("path") ==
          "/proc/777/ns/pid");
    // A host-PID pod keeps the host's namespace whatever the container asks.
    CHECK_FALSE(find_ns(container_spec(pod(rt::POD, rt::NODE), c, image(), rootfs, with_target,
                                       "/f/c"),
                        "pid"));
    c.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(
        static_cast<rt::NamespaceMode>(17));
    CHECK(code_of([&] { container_spec(p, c, image(), rootfs, kPaths, "/f/c"); }) ==
          grpc::StatusCode::INVALID_ARGUMENT);
  }
  SECTION("/dev/shm: the pod's tmpfs, the host's with host IPC, else the container's own") {
    CHECK(find_mount(s, "/dev/shm")->at("type") == "tmpfs");
    auto with_shm = kPaths;
    with_shm.shm = "/run/x/shm";
    auto s2 = container_spec(p, c, image(), rootfs, with_shm, "/f/c");
    CHECK(find_mount(s2, "/dev/shm")->at("source") == "/run/x/shm");
    auto s3 = container_spec(pod(rt::POD, rt::POD, rt::NODE), c, image(), rootfs, with_shm, "/f/c");
    CHECK(find_mount(s3, "/dev/shm")->at("source") == "/dev/shm");
  }
  SECTION("host network: no network/UTS namespace, the host's hostname") {
    auto s2 = container_spec(pod(rt::NODE), c, image(), rootfs, kPaths, "/f/c");
    CHECK_FALSE(find_ns(s2, "network"));
    CHECK_FALSE(find_ns(s2, "uts"));
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    CHECK(has(s2["process"]["env"], std::string("HOSTNAME=") + host));
  }
  SECTION("privileged: every bounding capability, host devices, nothing masked") {
    p.mutable_linux()->mutable_security_context()->set_privileged(true);
    c.mutable_linux()->mutable_security_context()->set_privileged(true);
    auto s2 = container_spec(p, c, image(), rootfs, kPaths, "/f/c");
    CHECK(s2["process"]["capabilities"]["bounding"] == json(bounding_capabilities()));
    CHECK_FALSE(s2["linux"].contains("maskedPaths"));
    bool null_dev = false;
    for (auto& d : s2["linux"]["devices"]) null_dev |= d["path"] == "/dev/null";
    CHECK(null_dev);
    CHECK(find_mount(s2, "/sys")->at("options").back() == "rw");
  }
  SECTION("refused: a privileged container in an unprivileged pod, bad mounts, devices, values") {
    auto expect = [&](rt::ContainerConfig bad, grpc::StatusCode want) {
      CHECK(code_of([&] { container_spec(p, bad, image(), rootfs, kPaths, "/f/c"); }) == want);
    };
    auto b = c;
    b.mutable_linux()->mutable_security_context()->set_privileged(true);
    expect(b, grpc::StatusCode::INVALID_ARGUMENT);
    for (auto [host, ctr] :
         std::vector<std::pair<std::string, std::string>>{{"relative", "/x"},
                                                          {"/tmp", "x"},
                                                          {"/tmp/../etc", "/x"},
                                                          {"/tmp", "/x/../../y"},
                                                          {"/does/not/exist", "/x"}}) {
      INFO(host << " -> " << ctr);
      b = c;
      auto* bm = b.add_mounts();
      bm->set_host_path(host);
      bm->set_container_path(ctr);
      expect(b, grpc::StatusCode::INVALID_ARGUMENT);
    }
    for (auto [host, perm] :
         std::vector<std::pair<std::string, std::string>>{{"/etc/passwd", "rwm"},
                                                          {"/dev/null", "rwx"},
                                                          {"/dev/null", "rwmrwm"},
                                                          {"/nonexistent", ""}}) {
      INFO(host << " " << perm);
      b = c;
      auto* d = b.add_devices();
      d->set_host_path(host);
      d->set_container_path("/dev/x");
      d->set_permissions(perm);
      expect(b, grpc::StatusCode::INVALID_ARGUMENT);
    }
    b = c;
    b.mutable_linux()->mutable_resources()->set_memory_limit_in_bytes(-1);
    expect(b, grpc::StatusCode::INVALID_ARGUMENT);
    b = c;
    b.mutable_linux()->mutable_resources()->set_oom_score_adj(5000);
    expect(b, grpc::StatusCode::INVALID_ARGUMENT);
    b = c;
    b.mutable_linux()->mutable_security_context()->set_run_as_username("nobody");
    expect(b, grpc::StatusCode::INVALID_ARGUMENT);
    b = c;
    b.mutable_linux()->mutable_security_context()->mutable_run_as_group()->set_value(5);
    b.mutable_linux()->mutable_security_context()->clear_run_as_username();
    expect(b, grpc::StatusCode::INVALID_ARGUMENT);
    b = c;
    auto* e = b.add_envs();
    e->set_key("A=B");
    expect(b, grpc::StatusCode::INVALID_ARGUMENT);
    b = c;
    b.set_working_dir("relative");
    expect(b, grpc::StatusCode::INVALID_ARGUMENT);
    b = c;
    b.clear_command();
    auto img = image();
    img.cmd.clear();
    CHECK(code_of([&] { container_spec(p, b, img, rootfs, kPaths, "/f/c"); }) ==
          grpc::StatusCode::INVALID_ARGUMENT);
  }
  SECTION("a symlinked /etc/passwd in the image cannot read the host's") {
    fs::remove(rootfs / "etc" / "passwd");
    fs::create_symlink("/etc/passwd",
                       rootfs / "etc" / "passwd");  // resolved inside rootfs: itself, a loop
    auto b = c;
    b.mutable_linux()->mutable_security_context()->set_run_as_username("root");
    CHECK(code_of([&] { container_spec(p, b, image(), rootfs, kPaths, "/f/c"); }) ==
          grpc::StatusCode::INVALID_ARGUMENT);
  }
  fs::remove_all(dir);
}

namespace {

// The rule of the default profile that names syscall, or null.
const json* rule_for(const json& profile, const std::string& syscall) {
  for (auto& r : profile["syscalls"])
    if (has(r["names"], syscall)) return &r;
  return nullptr;
}

std::string write_temp(const std::string& text) {
  char name[] = "/tmp/seccomp-XXXXXX";
  int fd = ::mkstemp(name);
  REQUIRE(fd >= 0);
  ::close(fd);
  std::ofstream(name, std::ios::binary) << text;
  return name;
}

}  // namespace

TEST_CASE("container_seccomp: CRI profiles to linux.seccomp", "[cri][runc]") {
  auto p = pod();
  auto c = container();
  auto* sc = c.mutable_linux()->mutable_security_context();
  auto* psc = p.mutable_linux()->mutable_security_context();
  const std::vector<std::string> caps = {"CAP_CHOWN", "CAP_KILL"};

  SECTION("unset and Unconfined: no filter") {
    CHECK(container_seccomp(p, c, caps).is_null());
    sc->mutable_seccomp()->set_profile_type(rt::SecurityProfile::Unconfined);
    CHECK(container_seccomp(p, c, caps).is_null());
    // The container's Unconfined wins over the pod's RuntimeDefault.
    psc->mutable_seccomp()->set_profile_type(rt::SecurityProfile::RuntimeDefault);
    CHECK(container_seccomp(p, c, caps).is_null());
    sc->set_seccomp_profile_path("unconfined");
    sc->clear_seccomp();
    CHECK(container_seccomp(p, c, caps).is_null());
  }
  SECTION("RuntimeDefault: the denylist, from the container, the legacy path or the pod") {
    sc->mutable_seccomp()->set_profile_type(rt::SecurityProfile::RuntimeDefault);
    auto s = container_seccomp(p, c, caps);
    CHECK(s["defaultAction"] == "SCMP_ACT_ALLOW");
    CHECK(s["architectures"] ==
          json::array({"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}));
    for (auto* denied : {"kexec_load", "init_module", "reboot", "bpf", "perf_event_open",
                         "userfaultfd", "keyctl", "open_by_handle_at", "swapon",
                         "clock_settime", "mount", "unshare", "setns", "pivot_root"}) {
      INFO(denied);
      auto* r = rule_for(s, denied);
      REQUIRE(r);
      CHECK((*r)["action"] == "SCMP_ACT_ERRNO");
      CHECK((*r)["errnoRet"] == 1);
    }
    for (auto* allowed : {"read", "write", "execve", "ptrace", "mkdir", "chroot"}) {
      INFO(allowed);
      CHECK_FALSE(rule_for(s, allowed));
    }
    auto* clone = rule_for(s, "clone");
    REQUIRE(clone);
    CHECK((*clone)["args"][0]["op"] == "SCMP_CMP_MASKED_EQ");
    CHECK((*clone)["args"][0]["value"] == 0x10000000);
    CHECK((*rule_for(s, "clone3"))["errnoRet"] == 38);  // ENOSYS: libc falls back to clone
    // The personality query (all bits set) stays allowed: bit 31 is in every mask.
    for (auto& r : s["syscalls"])
      if (has(r["names"], "personality")) {
        uint64_t mask = r["args"][0]["value"], value = r["args"][0]["valueTwo"];
        CHECK((0xffffffffULL & mask) != value);
      }

    // With CAP_SYS_ADMIN mounts and namespaces are the kernel's to check (Docker's rule).
    auto admin = container_seccomp(p, c, {"CAP_SYS_ADMIN"});
    CHECK_FALSE(rule_for(admin, "mount"));
    CHECK_FALSE(rule_for(admin, "unshare"));
    CHECK_FALSE(rule_for(admin, "clone"));
    CHECK(rule_for(admin, "kexec_load"));

    sc->clear_seccomp();
    for (auto* legacy : {"runtime/default", "docker/default"}) {
      sc->set_seccomp_profile_path(legacy);
      CHECK(container_seccomp(p, c, caps) == s);
    }
    sc->clear_seccomp_profile_path();
    CHECK(container_seccomp(p, c, caps).is_null());
    psc->mutable_seccomp()->set_profile_type(rt::SecurityProfile::RuntimeDefault);
    CHECK(container_seccomp(p, c, caps) == s);
    psc->clear_seccomp();
    psc->set_seccomp_profile_path("runtime/default");
    CHECK(container_seccomp(p, c, caps) == s);
  }
  SECTION("privileged: no filter whatever is asked") {
    p.mutable_linux()->mutable_security_context()->set_privileged(true);
    sc->set_privileged(true);
    sc->mutable_seccomp()->set_profile_type(rt::SecurityProfile::RuntimeDefault);
    CHECK(container_seccomp(p, c, caps).is_null());
    sc->mutable_seccomp()->set_profile_type(rt::SecurityProfile::Localhost);
    sc->mutable_seccomp()->set_localhost_ref("/does/not/exist.json");
    CHECK(container_seccomp(p, c, caps).is_null());
  }
  SECTION("Localhost: the file's profile, embedded; Docker format resolved") {
    auto path = write_temp(R"({"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
      "syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]})");
    sc->mutable_seccomp()->set_profile_type(rt::SecurityProfile::Localhost);
    sc->mutable_seccomp()->set_localhost_ref(path);
    auto s = container_seccomp(p, c, caps);
    CHECK(s["syscalls"][0]["names"] == json::array({"mkdir", "mkdirat"}));
    CHECK(s["architectures"] == json::array({"SCMP_ARCH_X86_64"}));
    sc->clear_seccomp();
    sc->set_seccomp_profile_path("localhost/" + path);
    CHECK(container_seccomp(p, c, caps) == s);
    sc->set_seccomp_profile_path("localhost" + path);  // "localhost/tmp/..." is the same file
    CHECK(container_seccomp(p, c, caps) == s);
    ::unlink(path.c_str());

    auto docker = write_temp(R"({"defaultAction":"SCMP_ACT_ERRNO",
      "archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86","SCMP_ARCH_X32"]},
                 {"architecture":"SCMP_ARCH_AARCH64","subArchitectures":["SCMP_ARCH_ARM"]}],
      "syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","comment":"always"},
                  {"names":["mount"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}},
                  {"names":["kill"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_KILL"]}},
                  {"names":["arm_fadvise64_64"],"action":"SCMP_ACT_ALLOW","includes":{"arches":["arm"]}},
                  {"names":["chown"],"action":"SCMP_ACT_ALLOW","excludes":{"caps":["CAP_CHOWN"]}},
                  {"name":"write","action":"SCMP_ACT_ALLOW"}]})");
    sc->clear_seccomp_profile_path();
    sc->mutable_seccomp()->set_profile_type(rt::SecurityProfile::Localhost);
    sc->mutable_seccomp()->set_localhost_ref(docker);
    auto d = container_seccomp(p, c, caps);
    ::unlink(docker.c_str());
    CHECK(d["architectures"] ==
          json::array({"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}));
    CHECK_FALSE(d.contains("archMap"));
    json names = json::array();
    for (auto& r : d["syscalls"]) {
      CHECK_FALSE(r.contains("includes"));
      CHECK_FALSE(r.contains("comment"));
      names.push_back(r["names"][0]);
    }
    CHECK(names == json::array({"read", "kill", "write"}));
  }
  SECTION("Localhost: hostile and broken files are INVALID_ARGUMENT naming the path") {
    std::vector<std::string> texts = {
        "",
        "not json",
        "[]",
        "42",
        R"({"syscalls":[]})",
        R"({"defaultAction":7})",
        R"({"defaultAction":"ALLOW"})",
        R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":{}})",
        R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[3]})",
        R"({"defaultAction":"SCMP_ACT_ALLOW","archMap":{}})",
        std::string(R"({"defaultAction":"SCMP_ACT_ALLOW","x":")") + std::string(1 << 20, 'a') +
            "\"}",
        std::string("{\"defaultAction\":\"SCMP_ACT_ALLOW\"\0}", 35),
    };
    sc->mutable_seccomp()->set_profile_type(rt::SecurityProfile::Localhost);
    for (auto& t : texts) {
      auto path = write_temp(t);
      sc->mutable_seccomp()->set_localhost_ref(path);
      INFO(t.substr(0, 80));
      try {
        container_seccomp(p, c, caps);
        FAIL("accepted");
      } catch (const CriError& e) {
        CHECK(e.code() == grpc::StatusCode::INVALID_ARGUMENT);
        CHECK(std::string(e.what()).find(path) != std::string::npos);
      }
      ::unlink(path.c_str());
    }
    for (const std::string& bad :
         std::vector<std::string>{"/nonexistent/profile.json", "relative.json", "", "/tmp",
                                  std::string("/tmp/a\0b", 8)}) {
      sc->mutable_seccomp()->set_localhost_ref(bad);
      CHECK(code_of([&] { container_seccomp(p, c, caps); }) ==
            grpc::StatusCode::INVALID_ARGUMENT);
    }
    for (auto* legacy : {"localhost", "runtime", "foo/bar", "Unconfined"}) {
      sc->clear_seccomp();
      sc->set_seccomp_profile_path(legacy);
      CHECK(code_of([&] { container_seccomp(p, c, caps); }) ==
            grpc::StatusCode::INVALID_ARGUMENT);
    }
  }
  SECTION("container_spec embeds it as linux.seccomp") {
    char dir[] = "/tmp/oci-spec-XXXXXX";
    REQUIRE(::mkdtemp(dir));
    sc->mutable_seccomp()->set_profile_type(rt::SecurityProfile::RuntimeDefault);
    auto s = container_spec(p, c, image(), dir, kPaths, "/f/c");
    CHECK(s["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ALLOW");
    CHECK(rule_for(s["linux"]["seccomp"], "mount"));  // default caps lack CAP_SYS_ADMIN
    sc->mutable_seccomp()->set_profile_type(rt::SecurityProfile::Unconfined);
    CHECK_FALSE(container_spec(p, c, image(), dir, kPaths, "/f/c")["linux"].contains("seccomp"));
    fs::remove_all(dir);
  }
}

TEST_CASE("infra_spec: the pod's seccomp profile filters frakti-pause", "[cri][runc]") {
  auto p = pod();
  auto* psc = p.mutable_linux()->mutable_security_context();
  auto filter = [&] { return infra_spec(p, "/r/rootfs", "/frakti/x")["linux"]; };

  CHECK_FALSE(filter().contains("seccomp"));  // unset: unconfined, as containerd
  psc->mutable_seccomp()->set_profile_type(rt::SecurityProfile::Unconfined);
  CHECK_FALSE(filter().contains("seccomp"));

  psc->mutable_seccomp()->set_profile_type(rt::SecurityProfile::RuntimeDefault);
  auto s = filter()["seccomp"];
  CHECK(s == sandbox_seccomp(p));
  CHECK(s["defaultAction"] == "SCMP_ACT_ALLOW");
  CHECK(rule_for(s, "mount"));  // the infra holds no capabilities
  CHECK(rule_for(s, "kexec_load"));
  psc->clear_seccomp();
  psc->set_seccomp_profile_path("runtime/default");
  CHECK(filter()["seccomp"] == s);

  // A privileged pod's infra is not filtered, whatever the pod asks (its containers decide
  // for themselves).
  psc->set_privileged(true);
  CHECK_FALSE(filter().contains("seccomp"));
  psc->set_privileged(false);

  auto path = write_temp(R"({"defaultAction":"SCMP_ACT_ALLOW",
    "syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]})");
  psc->clear_seccomp_profile_path();
  psc->mutable_seccomp()->set_profile_type(rt::SecurityProfile::Localhost);
  psc->mutable_seccomp()->set_localhost_ref(path);
  CHECK(filter()["seccomp"]["syscalls"][0]["names"] == json::array({"mkdir"}));
  ::unlink(path.c_str());
  // A missing profile fails the spec, before RunPodSandbox makes anything, naming the path.
  try {
    filter();
    FAIL("a missing profile was accepted");
  } catch (const CriError& e) {
    CHECK(e.code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(std::string(e.what()).find(path) != std::string::npos);
  }
}
