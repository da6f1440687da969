// The frakti daemon without VMs: flags, the socket, Version/Status/RuntimeConfig, and the
// errors CRI clients must get for unknown IDs and malformed requests. Runs anywhere (no KVM).

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "tests/cri/cri_daemon.hpp"

using namespace frakti::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

struct Run {
  int code;
  std::string out;
};

Run run_frakti(const std::string& args) {
  std::string cmd = fmt::format("{}/bin/frakti {} 2>&1", std::getenv("FRAKTI_BUILD_DIR"), args);
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  char buf[512];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  int st = ::pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

// A stand-in for an orphaned shim: a real, detached process whose command line is exactly
// `frakti-shim <dir>`, as VmBackend starts shims (python3 runs <dir>/__main__.py, which sleeps).
// Without KVM no real shim outlives its boot, so this is what the sweep can be shown on here.
pid_t fake_shim(const fs::path& dir) {
  fs::create_directories(dir);
  std::ofstream(dir / "__main__.py") << "import time\ntime.sleep(600)\n";
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::setsid();
    pid_t grandchild = ::fork();
    if (grandchild != 0) {
      (void)!::write(fds[1], &grandchild, sizeof grandchild);
      ::_exit(0);
    }
    ::execl("/usr/bin/python3", "frakti-shim", dir.c_str(), nullptr);
    ::_exit(127);
  }
  ::close(fds[1]);
  pid_t pid = -1;
  REQUIRE(::read(fds[0], &pid, sizeof pid) == sizeof pid);
  ::close(fds[0]);
  ::waitpid(child, nullptr, 0);
  return pid;
}

bool running(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

}  // namespace

TEST_CASE("frakti flags: bad ones fail with a message saying what to do", "[cri]") {
  auto r = run_frakti("--bogus");
  CHECK(r.code == 2);
  CHECK_THAT(r.out, Catch::Contains("unknown flag --bogus"));
  r = run_frakti("--cpu=zero");
  CHECK(r.code == 2);
  CHECK_THAT(r.out, Catch::Contains("--cpu: 'zero' is not a whole number"));
  r = run_frakti("--cgroup-driver=weird");
  CHECK(r.code == 2);
  CHECK_THAT(r.out, Catch::Contains("not cgroupfs or systemd"));
  if (!fs::exists("/run/systemd/system")) {
    r = run_frakti("--cgroup-driver=systemd");
    CHECK(r.code == 2);
    CHECK_THAT(r.out, Catch::Contains("systemd is not running on this host"));
  }
  r = run_frakti("--help");
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("--enable-alternative-runtime"));

  char tmpl[] = "/tmp/frakti-config-XXXXXX";
  int fd = ::mkstemp(tmpl);
  std::string bad = R"({"cpu": 2, "colour": "blue"})";
  REQUIRE(::write(fd, bad.data(), bad.size()) == static_cast<ssize_t>(bad.size()));
  ::close(fd);
  r = run_frakti(fmt::format("--config {}", tmpl));
  CHECK(r.code == 2);
  CHECK_THAT(r.out, Catch::Contains("unknown setting 'colour'"));
  ::unlink(tmpl);
}

TEST_CASE("frakti serves Version, Status and RuntimeConfig on an owner-only socket", "[cri]") {
  CriDaemon d;
  d.start({"--cpu", "2"});
  struct stat sb;
  REQUIRE(::stat(d.socket().c_str(), &sb) == 0);
  CHECK((sb.st_mode & 0777) == 0600);

  rt::VersionResponse v;
  REQUIRE(d.runtime().Version(deadline().get(), {}, &v).ok());
  CHECK(v.runtime_name() == "frakti");
  CHECK(v.runtime_api_version() == "v1");

  rt::StatusRequest sr;
  sr.set_verbose(true);
  rt::StatusResponse s;
  REQUIRE(d.runtime().Status(deadline().get(), sr, &s).ok());
  REQUIRE(s.status().conditions_size() == 2);
  CHECK(s.status().conditions(0).type() == "RuntimeReady");
  CHECK(s.status().conditions(0).status());
  CHECK(s.status().conditions(1).type() == "NetworkReady");
  CHECK_THAT(s.info().at("config"), Catch::Contains("\"cpu\":2"));

  rt::RuntimeConfigResponse rc;
  REQUIRE(d.runtime().RuntimeConfig(deadline().get(), {}, &rc).ok());
  CHECK(rc.linux().cgroup_driver() == rt::CGROUPFS);

  rt::UpdateRuntimeConfigRequest ur;
  ur.mutable_runtime_config()->mutable_network_config()->set_pod_cidr("10.88.0.0/16");
  rt::UpdateRuntimeConfigResponse uo;
  CHECK(d.runtime().UpdateRuntimeConfig(deadline().get(), ur, &uo).ok());

  // A second daemon on the same socket refuses instead of stealing it.
  auto second = run_frakti(fmt::format("--listen {} --root-directory {}/root2 --state-directory {}2", d.socket().string(),
                                       d.dir().string(), d.state().string()));
  CHECK(second.code == 1);
  CHECK_THAT(second.out, Catch::Contains("another frakti is serving"));
}

TEST_CASE("unknown IDs and malformed requests get the codes CRI clients expect", "[cri]") {
  CriDaemon d;
  d.start();
  auto& r = d.runtime();

  rt::PodSandboxStatusRequest ps;
  ps.set_pod_sandbox_id("0123456789abcdef");
  rt::PodSandboxStatusResponse pso;
  auto st = r.PodSandboxStatus(deadline().get(), ps, &pso);
  CHECK(st.error_code() == grpc::StatusCode::NOT_FOUND);
  CHECK_THAT(st.error_message(), Catch::Contains("0123456789abcdef"));

  rt::ContainerStatusRequest cs;
  cs.set_container_id("feedface");
  rt::ContainerStatusResponse cso;
  CHECK(r.ContainerStatus(deadline().get(), cs, &cso).error_code() == grpc::StatusCode::NOT_FOUND);

  rt::StartContainerRequest sc;
  sc.set_container_id("feedface");
  rt::StartContainerResponse sco;
  CHECK(r.StartContainer(deadline().get(), sc, &sco).error_code() == grpc::StatusCode::NOT_FOUND);

  rt::ExecSyncRequest ex;
  ex.set_container_id("feedface");
  ex.add_cmd("true");
  rt::ExecSyncResponse exo;
  CHECK(r.ExecSync(deadline().get(), ex, &exo).error_code() == grpc::StatusCode::NOT_FOUND);

  // Stop and remove of what is not there succeed: kubelet retries them.
  rt::StopPodSandboxRequest stop;
  stop.set_pod_sandbox_id("0123456789abcdef");
  rt::StopPodSandboxResponse stopo;
  CHECK(r.StopPodSandbox(deadline().get(), stop, &stopo).ok());
  rt::RemovePodSandboxRequest rm;
  rm.set_pod_sandbox_id("0123456789abcdef");
  rt::RemovePodSandboxResponse rmo;
  CHECK(r.RemovePodSandbox(deadline().get(), rm, &rmo).ok());
  rt::RemoveContainerRequest rc;
  rc.set_container_id("feedface");
  rt::RemoveContainerResponse rco;
  CHECK(r.RemoveContainer(deadline().get(), rc, &rco).ok());

  // Malformed.
  rt::RunPodSandboxRequest run;
  rt::RunPodSandboxResponse runo;
  CHECK(r.RunPodSandbox(deadline().get(), run, &runo).error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  run.mutable_config()->mutable_metadata()->set_name("no-namespace");
  st = r.RunPodSandbox(deadline().get(), run, &runo);
  CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK_THAT(st.error_message(), Catch::Contains("namespace"));
  *run.mutable_config() = pod_config("handler", d.log_dir());
  run.set_runtime_handler("gvisor");
  st = r.RunPodSandbox(deadline().get(), run, &runo);
  CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK_THAT(st.error_message(), Catch::Contains("unknown runtime handler 'gvisor'"));

  rt::CreateContainerRequest cc;
  rt::CreateContainerResponse cco;
  CHECK(r.CreateContainer(deadline().get(), cc, &cco).error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  cc.set_pod_sandbox_id("0123456789abcdef");
  *cc.mutable_config() = container_config("c", {"true"});
  CHECK(r.CreateContainer(deadline().get(), cc, &cco).error_code() == grpc::StatusCode::NOT_FOUND);

  rt::ListPodSandboxResponse list;
  REQUIRE(r.ListPodSandbox(deadline().get(), {}, &list).ok());
  CHECK(list.items_size() == 0);
}

TEST_CASE("a pod VM that cannot start leaves nothing behind", "[cri]") {
  if (fs::exists("/dev/kvm")) {
    SUCCEED("this host has /dev/kvm; the VM tests cover pods that start");
    return;
  }
  CriDaemon d;
  d.start({"--boot-timeout", "20"});
  rt::RunPodSandboxRequest run;
  *run.mutable_config() = pod_config("nokvm", d.log_dir());
  rt::RunPodSandboxResponse out;
  auto st = d.runtime().RunPodSandbox(deadline().get(), run, &out);
  CHECK_FALSE(st.ok());
  INFO(st.error_message());
  CHECK_THAT(st.error_message(), Catch::Contains("kvm"));
  rt::ListPodSandboxResponse list;
  REQUIRE(d.runtime().ListPodSandbox(deadline().get(), {}, &list).ok());
  CHECK(list.items_size() == 0);
  CHECK(d.leftovers() == "");
  CHECK(fs::is_empty(d.root() / "sandboxes"));
  CHECK(processes_matching("frakti-shim " + d.state().string()).empty());
  // The same name is free again.
  st = d.runtime().RunPodSandbox(deadline().get(), run, &out);
  CHECK(st.error_code() != grpc::StatusCode::ALREADY_EXISTS);
}

TEST_CASE("restart stops the shim of a pod directory no record names, and nothing else", "[cri]") {
  REQUIRE(fs::exists("/usr/bin/python3"));  // Debian package python3-minimal
  CriDaemon d;
  d.start();
  d.stop();
  // A pod record (as a crash right after RunPodSandbox's first write leaves it) protects its
  // directory; an unrecorded pod directory with a running shim is an orphan; a directory whose
  // name is no pod's is not frakti's to judge.
  std::string recorded = "1111111111112222222222223333333333334444444444445555555555556666";
  fs::create_directories(d.root() / "sandboxes" / recorded);
  std::ofstream(d.root() / "sandboxes" / recorded / "sandbox.json") << "{\"id\": \"" << recorded << "\"}\n";
  fs::path orphan = d.state() / "abcdef012345", kept = d.state() / recorded.substr(0, 12),
           other = d.state() / "not-a-pod-dir";
  pid_t orphan_pid = fake_shim(orphan), kept_pid = fake_shim(kept), other_pid = fake_shim(other);
  pid_t near_pid = fake_shim(orphan.string() + "x");  // same prefix, another directory
  struct Reaper {
    std::vector<pid_t> pids;
    ~Reaper() {
      for (pid_t p : pids) ::kill(p, SIGKILL);
    }
  } reaper{{orphan_pid, kept_pid, other_pid, near_pid}};
  std::this_thread::sleep_for(300ms);
  REQUIRE(running(orphan_pid));
  REQUIRE(processes_matching("frakti-shim " + orphan.string()).size() == 2);  // orphan and near
  d.start();
  INFO(d.daemon_log());
  CHECK_FALSE(running(orphan_pid));
  CHECK_FALSE(fs::exists(orphan));
  CHECK(d.daemon_log().find("sweep: pod directory " + orphan.string() + " had no record; stopped 1 shim") !=
        std::string::npos);
  CHECK(running(kept_pid));
  CHECK(fs::exists(kept / "__main__.py"));
  CHECK(running(other_pid));
  CHECK(fs::exists(other / "__main__.py"));
  CHECK(running(near_pid));
  // A second start finds nothing more to sweep.
  d.stop();
  d.start();
  CHECK(running(kept_pid));
  CHECK(fs::exists(kept / "__main__.py"));
}
