// runc pods end to end: the real frakti daemon with the host's runc and conmon, driven over the
// CRI socket as kubelet would (label root; no KVM needed).

#include <fmt/format.h>
#include <signal.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <chrono>
#include <fstream>
#include <future>
#include <map>
#include <regex>
#include <sstream>
#include <thread>
#include <vector>

#include "tests/cri/cri_client.hpp"
#include "tests/cri/cri_daemon.hpp"


// The deprecated seccomp_profile_path fields are exercised on purpose.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
using namespace frakti::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

rt::PodSandboxState pod_state(CriDaemon& d, const std::string& id) {
  rt::PodSandboxStatusRequest r;
  r.set_pod_sandbox_id(id);
  rt::PodSandboxStatusResponse out;
  auto st = d.runtime().PodSandboxStatus(deadline().get(), r, &out);
  INFO(st.error_message());
  REQUIRE(st.ok());
  return out.status().state();
}

rt::ContainerStatus wait_exited(CriDaemon& d, const std::string& id,
                                std::chrono::seconds limit = 60s) {
  auto end = Clock::now() + limit;
  for (;;) {
    auto s = status_of(d, id);
    if (s.state() == rt::CONTAINER_EXITED || Clock::now() > end) return s;
    std::this_thread::sleep_for(100ms);
  }
}

grpc::Status exec(CriDaemon& d, const std::string& id, const std::vector<std::string>& cmd,
                  rt::ExecSyncResponse& out, int64_t timeout = 30) {
  rt::ExecSyncRequest r;
  r.set_container_id(id);
  for (auto& a : cmd) r.add_cmd(a);
  r.set_timeout(timeout);
  return d.runtime().ExecSync(deadline(120s).get(), r, &out);
}

std::string exec_out(CriDaemon& d, const std::string& id, const std::vector<std::string>& cmd) {
  rt::ExecSyncResponse out;
  auto st = exec(d, id, cmd, out);
  INFO(st.error_message() << " stderr: " << out.stderr());
  REQUIRE(st.ok());
  REQUIRE(out.exit_code() == 0);
  return out.stdout();
}

void stop_container(CriDaemon& d, const std::string& id, int64_t timeout) {
  rt::StopContainerRequest r;
  r.set_container_id(id);
  r.set_timeout(timeout);
  rt::StopContainerResponse out;
  auto st = d.runtime().StopContainer(deadline(120s).get(), r, &out);
  INFO(st.error_message());
  REQUIRE(st.ok());
}

void remove_pod(CriDaemon& d, const std::string& id) {
  rt::StopPodSandboxRequest s;
  s.set_pod_sandbox_id(id);
  rt::StopPodSandboxResponse so;
  auto st = d.runtime().StopPodSandbox(deadline(120s).get(), s, &so);
  INFO(st.error_message());
  REQUIRE(st.ok());
  rt::RemovePodSandboxRequest r;
  r.set_pod_sandbox_id(id);
  rt::RemovePodSandboxResponse ro;
  st = d.runtime().RemovePodSandbox(deadline(120s).get(), r, &ro);
  INFO(st.error_message());
  REQUIRE(st.ok());
}

// Mount points under dir (from our mount namespace's table).
std::vector<std::string> mounts_under(const fs::path& dir) {
  std::vector<std::string> out;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string id, parent, dev, root, point;
    f >> id >> parent >> dev >> root >> point;
    if (point.rfind(dir.string(), 0) == 0) out.push_back(point);
  }
  return out;
}

std::vector<std::string> runc_containers(const CriDaemon& d) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto& e : fs::directory_iterator(d.state() / "runc" / "state", ec))
    out.push_back(e.path().filename());
  return out;
}

// Nothing of the removed pods stays: no mount, no runc container, no conmon, no bundle.
void check_nothing_left(CriDaemon& d, const std::vector<std::string>& ids) {
  CHECK(mounts_under(d.state()).empty());
  CHECK(mounts_under(d.root()).empty());
  CHECK(runc_containers(d).empty());
  CHECK(processes_matching((d.state() / "runc").string()).empty());  // no conmon
  for (auto& id : ids) {
    INFO(id);
    CHECK(processes_matching(id).empty());
    CHECK_FALSE(fs::exists(d.state() / "runc" / id));
    CHECK_FALSE(fs::exists(d.state() / "runc" / "exits" / id));
    CHECK_FALSE(fs::exists(d.root() / "containers" / id));
  }
  std::error_code ec;
  CHECK(fs::is_empty(d.state() / "runc" / "images", ec));
}

// Leaves the host clean even when a check failed half-way (runs before CriDaemon's removal).
struct Janitor {
  CriDaemon& d;
  ~Janitor() {
    for (auto& id : runc_containers(d))
      std::system(fmt::format("runc --root {} delete --force {} >/dev/null 2>&1",
                              (d.state() / "runc" / "state").string(), id)
                      .c_str());
    auto m = mounts_under(d.state());
    for (auto it = m.rbegin(); it != m.rend(); ++it)
      std::system(fmt::format("umount -l {}", *it).c_str());
  }
};

rt::PodSandboxConfig privileged_pod(const CriDaemon& d, const std::string& name) {
  auto p = pod_config(name, d.log_dir());
  p.mutable_linux()->mutable_security_context()->set_privileged(true);
  return p;
}

const std::regex kLogLine(
    R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+(Z|[+-]\d\d:\d\d) (stdout|stderr) [FP] .*$)");

/// A CRI log as kubelet reads it: "STREAM MESSAGE" per message, P fragments joined up to the
/// F line that ends them.
std::vector<std::string> log_messages(const std::string& log) {
  std::vector<std::string> out;
  std::map<std::string, std::string> pending;  // per stream
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    // "<time> <stream> <P|F> <content>"
    auto t = line.find(' '), s = line.find(' ', t + 1);
    if (t == std::string::npos || s == std::string::npos || s + 3 > line.size()) continue;
    std::string stream = line.substr(t + 1, s - t - 1);
    pending[stream] += line.substr(s + 3);
    if (line[s + 1] == 'F') {
      out.push_back(stream + " " + pending[stream]);
      pending.erase(stream);
    }
  }
  return out;
}

uint64_t inode_of(const std::string& path) {
  struct stat sb;
  return ::stat(path.c_str(), &sb) == 0 ? sb.st_ino : 0;
}

}  // namespace

TEST_CASE("runc pod: privileged pod full lifecycle", "[cri][runc]") {
  CriDaemon d;
  Janitor j{d};
  d.start();
  auto pcfg = privileged_pod(d, "priv");
  auto pod = run_pod(d, pcfg);
  CHECK(pod_state(d, pod) == rt::SANDBOX_READY);
  rt::PodSandboxStatusRequest vr;
  vr.set_pod_sandbox_id(pod);
  vr.set_verbose(true);
  rt::PodSandboxStatusResponse vs;
  REQUIRE(d.runtime().PodSandboxStatus(deadline().get(), vr, &vs).ok());
  CHECK(vs.info().at("info").find("\"backend\":\"runc\"") != std::string::npos);

  auto cfg = container_config("main", {"sh", "-c",
                                       "echo hello; echo oops >&2; trap '' TERM; "
                                       "while true; do echo tick; sleep 1; done"});
  cfg.mutable_linux()->mutable_security_context()->set_privileged(true);
  auto id = start_container(d, pod, pcfg, cfg);
  CHECK(status_of(d, id).state() == rt::CONTAINER_RUNNING);

  // ExecSync: output, exit codes, the privileged container's view.
  CHECK(exec_out(d, id, {"echo", "hi"}) == "hi\n");
  rt::ExecSyncResponse r;
  REQUIRE(exec(d, id, {"sh", "-c", "echo out; echo err >&2; exit 3"}, r).ok());
  CHECK(r.exit_code() == 3);
  CHECK(r.stdout() == "out\n");
  CHECK(r.stderr() == "err\n");
  CHECK(exec_out(d, id, {"cat", "/etc/hostname"}) == "priv\n");
  CHECK(exec_out(d, id, {"hostname"}) == "priv\n");
  CHECK(exec_out(d, id, {"sh", "-c", "grep CapEff /proc/self/status"}).find("0000000000000000") ==
        std::string::npos);
  CHECK(exec_out(d, id, {"sh", "-c", "test -c /dev/loop-control && echo yes"}) ==
        "yes\n");  // host devices
  CHECK(exec_out(d, id, {"sh", "-c", "echo written > /tmp/f && cat /tmp/f"}) ==
        "written\n");  // writable overlay
  // The pod's PID namespace (the CRI default, POD): the infra's frakti-pause is PID 1.
  CHECK(exec_out(d, id, {"cat", "/proc/1/cmdline"}) == std::string("/frakti-pause") + '\0');
  // A new network namespace with loopback only.
  auto links = exec_out(d, id, {"cat", "/proc/net/dev"});
  CHECK(links.find("lo:") != std::string::npos);
  CHECK(std::count(links.begin(), links.end(), '\n') == 3);  // two header lines + lo

  // ExecSync timeout: the command is killed and the call says DEADLINE_EXCEEDED.
  auto t0 = Clock::now();
  auto st = exec(d, id, {"sleep", "30"}, r, 1);
  CHECK(st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED);
  CHECK(Clock::now() - t0 < 10s);
  CHECK(exec_out(d, id, {"sh", "-c", "ps | grep -c '[s]leep 30' || true"}) == "0\n");

  // Stats from the cgroup and the overlay.
  rt::ContainerStatsRequest sr;
  sr.set_container_id(id);
  rt::ContainerStatsResponse so;
  REQUIRE(d.runtime().ContainerStats(deadline().get(), sr, &so).ok());
  CHECK(so.stats().cpu().usage_core_nano_seconds().value() > 0);
  CHECK(so.stats().memory().working_set_bytes().value() > 0);
  CHECK(so.stats().writable_layer().used_bytes().value() > 0);  // /tmp/f

  // The CRI log at the kubelet path, then ReopenContainerLog after a rotation.
  fs::path log = fs::path(pcfg.log_directory()) / "main.log";
  std::this_thread::sleep_for(1500ms);
  auto text = read_file(log);
  INFO(text);
  CHECK(text.find(" stdout F hello\n") != std::string::npos);
  CHECK(text.find(" stderr F oops\n") != std::string::npos);
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) CHECK(std::regex_match(line, kLogLine));
  fs::rename(log, log.string() + ".1");
  rt::ReopenContainerLogRequest rr;
  rr.set_container_id(id);
  rt::ReopenContainerLogResponse ro;
  REQUIRE(d.runtime().ReopenContainerLog(deadline().get(), rr, &ro).ok());
  std::this_thread::sleep_for(2500ms);
  CHECK(read_file(log).find(" stdout F tick\n") != std::string::npos);

  // Stop: SIGTERM is ignored, so after the 2 s timeout SIGKILL ends it.
  t0 = Clock::now();
  stop_container(d, id, 2);
  auto took = Clock::now() - t0;
  CHECK(took >= 2s);
  CHECK(took < 20s);
  auto s = status_of(d, id);
  CHECK(s.state() == rt::CONTAINER_EXITED);
  CHECK(s.exit_code() == 137);
  CHECK(s.reason() == "Error");

  rt::RemoveContainerRequest rm;
  rm.set_container_id(id);
  rt::RemoveContainerResponse rmo;
  REQUIRE(d.runtime().RemoveContainer(deadline().get(), rm, &rmo).ok());
  remove_pod(d, pod);
  check_nothing_left(d, {pod, id});
}

TEST_CASE("runc pod: host network pod, exit codes and reasons", "[cri][runc]") {
  CriDaemon d;
  Janitor j{d};
  d.start();
  auto pcfg = pod_config("hostnet", d.log_dir());
  pcfg.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(
      rt::NODE);
  pcfg.mutable_dns_config()->add_servers("10.0.0.10");
  pcfg.mutable_dns_config()->add_searches("svc.cluster.local");
  auto pod = run_pod(d, pcfg);
  CHECK(pod_state(d, pod) == rt::SANDBOX_READY);

  auto cfg = container_config("sleeper", {"sh", "-c", "while true; do sleep 1; done"});
  auto id = start_container(d, pod, pcfg, cfg);
  // The host's network namespace, the pod's resolv.conf, not privileged.
  CHECK(exec_out(d, id, {"stat", "-L", "-c", "%i", "/proc/self/ns/net"}) ==
        fmt::format("{}\n", inode_of("/proc/self/ns/net")));
  CHECK(exec_out(d, id, {"cat", "/etc/resolv.conf"}) ==
        "search svc.cluster.local\nnameserver 10.0.0.10\n");
  CHECK(exec_out(d, id, {"sh", "-c", "grep CapEff /proc/self/status"}) ==
        "CapEff:\t00000000a80425fb\n");
  rt::ExecSyncResponse r;
  REQUIRE(exec(d, id, {"sh", "-c", "echo x > /proc/sys/kernel/panic_on_oops"}, r).ok());
  CHECK(r.exit_code() != 0);  // /proc/sys is read-only

  auto ok =
      start_container(d, pod, pcfg, container_config("ok", {"sh", "-c", "echo done; exit 0"}));
  auto bad = start_container(d, pod, pcfg, container_config("bad", {"sh", "-c", "exit 7"}));
  auto s = wait_exited(d, ok);
  CHECK(s.state() == rt::CONTAINER_EXITED);
  CHECK(s.exit_code() == 0);
  CHECK(s.reason() == "Completed");
  CHECK(s.finished_at() >= s.started_at());
  CHECK(read_file(fs::path(pcfg.log_directory()) / "ok.log").find(" stdout F done\n") !=
        std::string::npos);
  s = wait_exited(d, bad);
  CHECK(s.exit_code() == 7);
  CHECK(s.reason() == "Error");

  // A graceful stop: the shell is not PID 1 here (frakti-pause is), so SIGTERM ends it.
  auto t0 = Clock::now();
  stop_container(d, id, 10);
  CHECK(Clock::now() - t0 < 5s);
  s = status_of(d, id);
  CHECK(s.state() == rt::CONTAINER_EXITED);
  CHECK(s.exit_code() == 143);

  // A container whose command does not exist: CreateContainer fails and leaves nothing.
  std::string nid;
  auto st = create(d, pod, pcfg, container_config("missing", {"/no/such/binary"}), &nid);
  CHECK_FALSE(st.ok());
  CHECK(st.error_message().find("/no/such/binary") != std::string::npos);
  // The pod's shm, busybox's erofs and the overlays of sleeper, ok and bad.
  CHECK(mounts_under(d.state()).size() == 5);
  remove_pod(d, pod);
  check_nothing_left(d, {pod, id, ok, bad});
}

TEST_CASE("runc pod: OOMKilled and a refused node-wide sysctl", "[cri][runc]") {
  CriDaemon d;
  Janitor j{d};
  d.start();
  std::filesystem::remove("oom");  // conmon's OOM marker must land in the bundle, not here
  auto pcfg = pod_config("oom", d.log_dir());
  (*pcfg.mutable_annotations())["runtime.frakti.alpha.kubernetes.io/OSContainer"] = "true";
  auto bad = pcfg;
  (*bad.mutable_linux()->mutable_sysctls())["kernel.panic"] = "1";
  rt::RunPodSandboxRequest req;
  *req.mutable_config() = bad;
  rt::RunPodSandboxResponse out;
  CHECK(d.runtime().RunPodSandbox(deadline().get(), req, &out).error_code() ==
        grpc::StatusCode::INVALID_ARGUMENT);

  // A hostname runc cannot set fails the infra after conmon and runc started: nothing stays.
  auto longname = pcfg;
  longname.set_hostname(std::string(80, 'h'));
  *req.mutable_config() = longname;
  auto st = d.runtime().RunPodSandbox(deadline().get(), req, &out);
  CHECK_FALSE(st.ok());
  CHECK(st.error_message().find("hostname") != std::string::npos);
  CHECK(runc_containers(d).empty());
  CHECK(processes_matching((d.state() / "runc").string())
            .empty());  // no conmon (its -b names the bundle)
  std::error_code ec;
  for (auto& e : fs::directory_iterator(d.state() / "runc", ec))
    CHECK((e.path().filename() == "state" || e.path().filename() == "exits" ||
           e.path().filename() == "sock" || e.path().filename() == "images"));
  CHECK(fs::is_empty(d.state() / "runc" / "exits"));
  rt::ListPodSandboxResponse pods;
  REQUIRE(d.runtime().ListPodSandbox(deadline().get(), {}, &pods).ok());
  CHECK(pods.items_size() == 0);

  (*pcfg.mutable_linux()->mutable_sysctls())["net.ipv4.ip_unprivileged_port_start"] = "100";
  auto pod = run_pod(d, pcfg);
  auto cfg = container_config("hog", {"sh", "-c", "x=a; while true; do x=$x$x; done"});
  cfg.mutable_linux()->mutable_resources()->set_memory_limit_in_bytes(32 << 20);
  auto probe = start_container(d, pod, pcfg, container_config("probe", {"sleep", "1000"}));
  CHECK(exec_out(d, probe, {"cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"}) == "100\n");
  // The pod's containers share one /dev/shm (they share the IPC namespace).
  exec_out(d, probe, {"sh", "-c", "echo token > /dev/shm/t"});
  auto reader = start_container(d, pod, pcfg, container_config("reader", {"cat", "/dev/shm/t"}));
  auto rs = wait_exited(d, reader);
  CHECK(rs.exit_code() == 0);
  CHECK(read_file(fs::path(pcfg.log_directory()) / "reader.log").find(" stdout F token\n") !=
        std::string::npos);
  auto id = start_container(d, pod, pcfg, cfg);
  auto s = wait_exited(d, id, 120s);
  CHECK(s.state() == rt::CONTAINER_EXITED);
  CHECK(s.exit_code() == 137);
  CHECK(s.reason() == "OOMKilled");
  remove_pod(d, pod);
  CHECK_FALSE(std::filesystem::exists("oom"));
  check_nothing_left(d, {pod, id, probe, reader});
}

TEST_CASE("runc pod: kill -9 of frakti stops no pod; restart recovers and records exits",
          "[cri][runc]") {
  CriDaemon d;
  Janitor j{d};
  d.start();
  auto pcfg = privileged_pod(d, "survivor");
  auto pod = run_pod(d, pcfg);
  auto keep = start_container(
      d, pod, pcfg,
      container_config("keep", {"sh", "-c", "while true; do echo alive; sleep 1; done"}));
  auto quit =
      start_container(d, pod, pcfg, container_config("quit", {"sh", "-c", "sleep 3; exit 5"}));
  d.kill9();
  std::this_thread::sleep_for(5s);  // quit exits while no frakti runs
  d.start();
  CHECK(pod_state(d, pod) == rt::SANDBOX_READY);
  CHECK(status_of(d, keep).state() == rt::CONTAINER_RUNNING);
  CHECK(exec_out(d, keep, {"echo", "still here"}) == "still here\n");
  auto s = status_of(d, quit);
  CHECK(s.state() == rt::CONTAINER_EXITED);
  CHECK(s.exit_code() == 5);
  CHECK(s.reason() == "Error");
  // conmon kept logging while frakti was down.
  auto text = read_file(fs::path(pcfg.log_directory()) / "keep.log");
  CHECK(std::count(text.begin(), text.end(), '\n') >= 5);
  remove_pod(d, pod);
  check_nothing_left(d, {pod, keep, quit});
}

TEST_CASE("runc pod: restart sweeps a runc container that has no record, and only it",
          "[cri][runc]") {
  CriDaemon d;
  Janitor j{d};
  d.start();
  auto pcfg = privileged_pod(d, "swept");
  auto pod = run_pod(d, pcfg);
  auto kept = start_container(d, pod, pcfg, container_config("kept", {"sleep", "1000"}));
  auto orphan = start_container(d, pod, pcfg, container_config("orphan", {"sleep", "1000"}));
  d.stop();
  // What a kill in the middle of CreateContainer leaves: runc state, bundle, overlay mount and
  // conmon, but no record.
  fs::path bundle = d.state() / "runc" / orphan;
  REQUIRE(fs::remove(d.root() / "containers" / orphan / "container.json"));
  auto listed = [&](const std::string& id) {
    auto all = runc_containers(d);
    return std::find(all.begin(), all.end(), id) != all.end();
  };
  REQUIRE(listed(orphan));
  REQUIRE(fs::exists(bundle));
  REQUIRE_FALSE(mounts_under(bundle).empty());
  REQUIRE_FALSE(processes_matching(orphan).empty());
  d.start();
  INFO(d.daemon_log());
  CHECK_FALSE(listed(orphan));
  CHECK_FALSE(fs::exists(bundle));
  CHECK(mounts_under(bundle).empty());
  CHECK(processes_matching(orphan).empty());
  CHECK_FALSE(fs::exists(d.root() / "containers" / orphan));
  CHECK_FALSE(fs::exists(d.state() / "runc" / pod / "members" / orphan));
  CHECK(d.daemon_log().find("sweep: runc container " + orphan.substr(0, 12)) != std::string::npos);
  // The recorded pod and container are untouched, and a second start sweeps nothing more.
  for (int round = 0; round < 2; ++round) {
    CHECK(pod_state(d, pod) == rt::SANDBOX_READY);
    CHECK(status_of(d, kept).state() == rt::CONTAINER_RUNNING);
    CHECK(exec_out(d, kept, {"echo", "still here"}) == "still here\n");
    CHECK(listed(pod));
    CHECK(listed(kept));
    if (round == 0) {
      d.stop();
      d.start();
    }
  }
  remove_pod(d, pod);
  check_nothing_left(d, {pod, kept, orphan});
}

namespace {

grpc::Status update(CriDaemon& d, const std::string& id, const rt::LinuxContainerResources& r) {
  rt::UpdateContainerResourcesRequest q;
  q.set_container_id(id);
  *q.mutable_linux() = r;
  rt::UpdateContainerResourcesResponse out;
  return d.runtime().UpdateContainerResources(deadline().get(), q, &out);
}

// The container's init pid, from ContainerStatus's verbose info.
pid_t pid_of(CriDaemon& d, const std::string& id) {
  rt::ContainerStatusRequest r;
  r.set_container_id(id);
  r.set_verbose(true);
  rt::ContainerStatusResponse out;
  auto st = d.runtime().ContainerStatus(deadline().get(), r, &out);
  INFO(st.error_message());
  REQUIRE(st.ok());
  std::smatch m;
  std::string info = out.info().at("info");
  INFO(info);
  REQUIRE(std::regex_search(info, m, std::regex(R"("pid":(\d+))")));
  return std::stoi(m[1]);
}

// The limits the kernel holds for a process's cgroups (-1: none), read the way they are mounted:
// cgroup v1 controllers (memory, cpu) or the v2 unified tree.
struct KernelLimits {
  int64_t memory = 0, memsw = 0;  // memsw: memory + swap (v1; 0 when the host has no such file)
  int64_t quota = 0, period = 0;
};

int64_t limit_value(const std::string& text) {
  if (text.rfind("max", 0) == 0) return -1;
  REQUIRE_FALSE(text.empty());
  auto v = std::stoll(text);
  return v >= (int64_t{1} << 62) ? -1 : v;  // v1 writes "no limit" as a page-rounded 2^63-1
}

KernelLimits kernel_limits(pid_t pid) {
  std::map<std::string, std::string> v1;  // controller -> cgroup path
  std::string v2;
  std::ifstream in(fmt::format("/proc/{}/cgroup", pid));
  for (std::string line; std::getline(in, line);) {
    auto a = line.find(':'), b = line.find(':', a + 1);
    std::string ctrls = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
    if (ctrls.empty()) v2 = path;
    std::istringstream names(ctrls);
    for (std::string n; std::getline(names, n, ',');) v1[n] = path;
    v1["dir:" + ctrls] = path;
  }
  // A v1 controller's mount: /sys/fs/cgroup/<its co-mounted list>, e.g. cpu,cpuacct.
  auto v1_dir = [&](const std::string& ctrl) -> fs::path {
    for (auto& [k, path] : v1) {
      if (k.rfind("dir:", 0) != 0) continue;
      std::string list = k.substr(4);
      std::istringstream names(list);
      for (std::string n; std::getline(names, n, ',');)
        if (n == ctrl) return fs::path("/sys/fs/cgroup") / list / path.substr(1);
    }
    return {};
  };
  KernelLimits out;
  INFO("pid " << pid << " cgroup " << read_file(fmt::format("/proc/{}/cgroup", pid)));
  if (v1.count("memory")) {
    fs::path mem = v1_dir("memory"), cpu = v1_dir("cpu");
    INFO(mem << " " << cpu);
    out.memory = limit_value(read_file(mem / "memory.limit_in_bytes"));
    if (fs::exists(mem / "memory.memsw.limit_in_bytes"))
      out.memsw = limit_value(read_file(mem / "memory.memsw.limit_in_bytes"));
    out.quota = limit_value(read_file(cpu / "cpu.cfs_quota_us"));
    out.period = limit_value(read_file(cpu / "cpu.cfs_period_us"));
  } else {
    fs::path root = fs::exists("/sys/fs/cgroup/cgroup.controllers") ? "/sys/fs/cgroup"
                                                                    : "/sys/fs/cgroup/unified";
    fs::path dir = root / v2.substr(1);
    INFO(dir);
    out.memory = limit_value(read_file(dir / "memory.max"));
    std::istringstream cpu(read_file(dir / "cpu.max"));
    std::string q, p;
    cpu >> q >> p;
    out.quota = limit_value(q);
    out.period = limit_value(p);
  }
  return out;
}

}  // namespace

TEST_CASE("runc pod: UpdateContainerResources changes the container's cgroups", "[cri][runc]") {
  CriDaemon d;
  Janitor j{d};
  d.start();
  auto pcfg = privileged_pod(d, "resize");
  auto pod = run_pod(d, pcfg);
  constexpr int64_t MiB = 1 << 20;
  auto cfg = container_config("limited", {"sh", "-c", "while true; do sleep 1; done"});
  cfg.mutable_linux()->mutable_resources()->set_memory_limit_in_bytes(64 * MiB);
  cfg.mutable_linux()->mutable_resources()->set_cpu_shares(512);
  auto id = start_container(d, pod, pcfg, cfg);
  pid_t pid = pid_of(d, id);
  REQUIRE(pid > 0);
  auto k = kernel_limits(pid);
  REQUIRE(k.memory == 64 * MiB);
  CHECK(k.quota == -1);
  bool memsw = k.memsw != 0;  // a v1 host with swap accounting
  if (memsw) CHECK(k.memsw == 64 * MiB);

  // Raise memory past the create-time memory+swap limit and add a CPU quota.
  rt::LinuxContainerResources r;
  r.set_memory_limit_in_bytes(96 * MiB);
  r.set_cpu_quota(50000);
  r.set_cpu_period(200000);
  auto st = update(d, id, r);
  INFO(st.error_message() << "\n" << d.daemon_log());
  REQUIRE(st.ok());
  k = kernel_limits(pid);
  CHECK(k.memory == 96 * MiB);
  if (memsw) CHECK(k.memsw == 96 * MiB);
  CHECK(k.quota == 50000);
  CHECK(k.period == 200000);
  auto res = status_of(d, id).resources().linux();
  CHECK(res.memory_limit_in_bytes() == 96 * MiB);
  CHECK(res.cpu_quota() == 50000);
  CHECK(res.cpu_period() == 200000);
  CHECK(res.cpu_shares() == 512);  // from create, untouched
  CHECK(exec_out(d, id, {"echo", "alive"}) == "alive\n");

  // Lower memory only: 0 fields stay as they are.
  rt::LinuxContainerResources lower;
  lower.set_memory_limit_in_bytes(48 * MiB);
  st = update(d, id, lower);
  INFO(st.error_message());
  REQUIRE(st.ok());
  k = kernel_limits(pid);
  CHECK(k.memory == 48 * MiB);
  if (memsw) CHECK(k.memsw == 48 * MiB);
  CHECK(k.quota == 50000);
  CHECK(k.period == 200000);
  res = status_of(d, id).resources().linux();
  CHECK(res.memory_limit_in_bytes() == 48 * MiB);
  CHECK(res.cpu_quota() == 50000);

  // Refused values change nothing: a negative limit (our check), a CPU the host does not have
  // (the kernel's, through runc), cgroup v2 entries on a v1 host.
  rt::LinuxContainerResources bad;
  bad.set_memory_limit_in_bytes(-1);
  bad.set_cpu_quota(10000);
  st = update(d, id, bad);
  CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(st.error_message().find("memory_limit_in_bytes") != std::string::npos);
  rt::LinuxContainerResources nocpu;
  nocpu.set_cpuset_cpus("4095");
  st = update(d, id, nocpu);
  CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(st.error_message().find("runc update of container " + id) != std::string::npos);
  CHECK(st.error_message().find("cpuset") != std::string::npos);
  if (!fs::exists("/sys/fs/cgroup/cgroup.controllers")) {
    rt::LinuxContainerResources unified;
    (*unified.mutable_unified())["memory.high"] = "50000000";
    st = update(d, id, unified);
    CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(st.error_message().find("cgroup v2") != std::string::npos);
  }
  k = kernel_limits(pid);
  CHECK(k.memory == 48 * MiB);
  CHECK(k.quota == 50000);
  res = status_of(d, id).resources().linux();
  CHECK(res.memory_limit_in_bytes() == 48 * MiB);
  CHECK(res.cpu_quota() == 50000);
  CHECK(res.cpuset_cpus().empty());

  // A created, not yet started container takes new limits too (runc made its cgroup).
  std::string created;
  auto ccfg = container_config("waiting", {"sleep", "1000"});
  st = create(d, pod, pcfg, ccfg, &created);
  INFO(st.error_message());
  REQUIRE(st.ok());
  rt::LinuxContainerResources cr;
  cr.set_memory_limit_in_bytes(40 * MiB);
  cr.set_cpu_quota(30000);
  st = update(d, created, cr);
  INFO(st.error_message());
  REQUIRE(st.ok());
  k = kernel_limits(pid_of(d, created));
  CHECK(k.memory == 40 * MiB);
  if (memsw) CHECK(k.memsw == 40 * MiB);
  CHECK(k.quota == 30000);
  CHECK(status_of(d, created).resources().linux().memory_limit_in_bytes() == 40 * MiB);

  // Exited: FAILED_PRECONDITION; removed: NOT_FOUND.
  stop_container(d, id, 0);
  REQUIRE(status_of(d, id).state() == rt::CONTAINER_EXITED);
  st = update(d, id, lower);
  CHECK(st.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  rt::RemoveContainerRequest rm;
  rm.set_container_id(id);
  rt::RemoveContainerResponse rmo;
  REQUIRE(d.runtime().RemoveContainer(deadline().get(), rm, &rmo).ok());
  st = update(d, id, lower);
  CHECK(st.error_code() == grpc::StatusCode::NOT_FOUND);
  remove_pod(d, pod);
  check_nothing_left(d, {pod, id, created});
}

namespace {

rt::PodSandboxConfig host_net_pod(const CriDaemon& d, const std::string& name) {
  auto p = pod_config(name, d.log_dir());
  p.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(
      rt::NODE);
  return p;
}

rt::ContainerConfig with_seccomp(rt::ContainerConfig c, rt::SecurityProfile::ProfileType type,
                                 const std::string& ref = "") {
  auto* p = c.mutable_linux()->mutable_security_context()->mutable_seccomp();
  p->set_profile_type(type);
  p->set_localhost_ref(ref);
  return c;
}

std::vector<std::string> container_ids(CriDaemon& d) {
  rt::ListContainersRequest r;
  rt::ListContainersResponse out;
  auto st = d.runtime().ListContainers(deadline().get(), r, &out);
  REQUIRE(st.ok());
  std::vector<std::string> ids;
  for (auto& c : out.containers()) ids.push_back(c.id());
  return ids;
}

}  // namespace

TEST_CASE("runc pod: seccomp RuntimeDefault, Unconfined, Localhost and a bad profile",
          "[cri][runc]") {
  CriDaemon d;
  Janitor j{d};
  d.start();
  // The pod's RuntimeDefault is the default of containers that name no profile.
  auto pcfg = host_net_pod(d, "seccomp");
  pcfg.mutable_linux()->mutable_security_context()->mutable_seccomp()->set_profile_type(
      rt::SecurityProfile::RuntimeDefault);
  auto pod = run_pod(d, pcfg);
  const std::vector<std::string> loop = {"sh", "-c", "while true; do sleep 1; done"};

  auto free = start_container(
      d, pod, pcfg, with_seccomp(container_config("free", loop), rt::SecurityProfile::Unconfined));
  auto inherit = start_container(d, pod, pcfg, container_config("inherit", loop));
  auto legacy = container_config("legacy", loop);
  legacy.mutable_linux()->mutable_security_context()->set_seccomp_profile_path("docker/default");
  auto legacy_id = start_container(d, pod, pcfg, legacy);

  CHECK(exec_out(d, free, {"sh", "-c", "grep '^Seccomp:' /proc/self/status"}) == "Seccomp:\t0\n");
  // The pod's profile filters its infra too: PID 1 of the pod's PID namespace is frakti-pause.
  CHECK(exec_out(d, free, {"cat", "/proc/1/comm"}) == "frakti-pause\n");
  CHECK(exec_out(d, free, {"sh", "-c", "grep '^Seccomp:' /proc/1/status"}) == "Seccomp:\t2\n");
  // A new user namespace is what the default profile refuses a container without
  // CAP_SYS_ADMIN; without a filter the kernel allows it.
  CHECK(exec_out(d, free, {"unshare", "-U", "true"}).empty());
  for (auto& id : {inherit, legacy_id}) {
    INFO(id);
    CHECK(exec_out(d, id, {"sh", "-c", "grep '^Seccomp:' /proc/self/status"}) == "Seccomp:\t2\n");
    rt::ExecSyncResponse r;
    REQUIRE(exec(d, id, {"unshare", "-U", "true"}, r).ok());
    CHECK(r.exit_code() != 0);
    CHECK(r.stderr().find("Operation not permitted") != std::string::npos);
    REQUIRE(exec(d, id, {"swapoff", "-a"}, r).ok());
    CHECK(r.exit_code() != 0);
    // Ordinary work goes on.
    CHECK(exec_out(d, id, {"sh", "-c", "mkdir /tmp/d && echo ok > /tmp/d/f && cat /tmp/d/f"}) ==
          "ok\n");
  }

  // Localhost: a host file denying mkdir makes mkdir fail and nothing else.
  fs::path profiles = d.root().parent_path() / "seccomp-profiles";
  fs::create_directories(profiles);
  std::ofstream(profiles / "nomkdir.json")
      << R"({"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
            "syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]})";
  auto nomkdir = start_container(
      d, pod, pcfg,
      with_seccomp(container_config("nomkdir", loop), rt::SecurityProfile::Localhost,
                   (profiles / "nomkdir.json").string()));
  rt::ExecSyncResponse r;
  REQUIRE(exec(d, nomkdir, {"mkdir", "/tmp/x"}, r).ok());
  CHECK(r.exit_code() != 0);
  CHECK(r.stderr().find("Operation not permitted") != std::string::npos);
  CHECK(exec_out(d, nomkdir, {"sh", "-c", "echo y > /tmp/y && cat /tmp/y"}) == "y\n");
  CHECK(exec_out(d, nomkdir, {"unshare", "-U", "true"}).empty());  // only mkdir is denied

  // A missing or malformed profile: INVALID_ARGUMENT naming the path, nothing made.
  std::ofstream(profiles / "broken.json") << R"({"syscalls": [)";
  auto before_mounts = mounts_under(d.state());
  auto before_runc = runc_containers(d);
  auto before_ids = container_ids(d);
  for (auto bad : {profiles / "missing.json", profiles / "broken.json"}) {
    INFO(bad);
    std::string id;
    auto st = create(
        d, pod, pcfg,
        with_seccomp(container_config("bad", loop), rt::SecurityProfile::Localhost, bad.string()),
        &id);
    CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(st.error_message().find(bad.string()) != std::string::npos);
    CHECK(mounts_under(d.state()) == before_mounts);
    CHECK(runc_containers(d) == before_runc);
    CHECK(container_ids(d) == before_ids);
  }

  remove_pod(d, pod);
  check_nothing_left(d, {pod, free, inherit, legacy_id, nomkdir});

  // A pod whose own profile is missing: INVALID_ARGUMENT naming it, and no pod is made.
  auto badpod = host_net_pod(d, "seccomp-missing");
  auto* bp = badpod.mutable_linux()->mutable_security_context()->mutable_seccomp();
  bp->set_profile_type(rt::SecurityProfile::Localhost);
  bp->set_localhost_ref((profiles / "missing.json").string());
  rt::RunPodSandboxRequest req;
  *req.mutable_config() = badpod;
  rt::RunPodSandboxResponse out;
  auto st = d.runtime().RunPodSandbox(deadline().get(), req, &out);
  CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(st.error_message().find((profiles / "missing.json").string()) != std::string::npos);
  rt::ListPodSandboxResponse pods;
  REQUIRE(d.runtime().ListPodSandbox(deadline().get(), {}, &pods).ok());
  CHECK(pods.items().empty());
  CHECK(runc_containers(d).empty());
}

TEST_CASE("runc pod: PID namespace mode TARGET joins the target container's namespace",
          "[cri][runc]") {
  CriDaemon d;
  Janitor j{d};
  d.start();
  auto pcfg = host_net_pod(d, "pidtarget");
  auto pod = run_pod(d, pcfg);
  auto own_pid_ns = [](rt::ContainerConfig c) {
    c.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(
        rt::CONTAINER);
    return c;
  };
  auto targeting = [](rt::ContainerConfig c, const std::string& target) {
    auto* ns = c.mutable_linux()->mutable_security_context()->mutable_namespace_options();
    ns->set_pid(rt::TARGET);
    ns->set_target_id(target);
    return c;
  };
  // The target runs in a PID namespace of its own, so only TARGET can see its processes.
  auto target = start_container(
      d, pod, pcfg, own_pid_ns(container_config("target", {"sh", "-c", "exec sleep 4242"})));
  auto loop = std::vector<std::string>{"sh", "-c", "while true; do sleep 1; done"};
  auto debug = start_container(d, pod, pcfg, targeting(container_config("debug", loop), target));
  auto other = start_container(d, pod, pcfg, own_pid_ns(container_config("other", loop)));

  CHECK(exec_out(d, debug, {"ps", "-o", "pid,args"}).find("sleep 4242") != std::string::npos);
  CHECK(exec_out(d, debug, {"cat", "/proc/1/cmdline"}) == std::string("sleep\0004242\0", 11));
  CHECK(exec_out(d, debug, {"stat", "-L", "-c", "%i", "/proc/self/ns/pid"}) ==
        exec_out(d, target, {"stat", "-L", "-c", "%i", "/proc/self/ns/pid"}));
  CHECK(exec_out(d, other, {"ps", "-o", "pid,args"}).find("sleep 4242") == std::string::npos);

  std::string id;
  // Unknown target.
  auto st = create(d, pod, pcfg,
                   targeting(container_config("ghost", loop), std::string(64, 'a')), &id);
  CHECK(st.error_code() == grpc::StatusCode::NOT_FOUND);
  st = create(d, pod, pcfg, targeting(container_config("ghost2", loop), "../../etc"), &id);
  CHECK(st.error_code() == grpc::StatusCode::NOT_FOUND);
  // A target that is created but not running.
  std::string idle;
  REQUIRE(create(d, pod, pcfg, own_pid_ns(container_config("idle", loop)), &idle).ok());
  st = create(d, pod, pcfg, targeting(container_config("late", loop), idle), &id);
  CHECK(st.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK(st.error_message().find("not running") != std::string::npos);
  // A target in another pod.
  auto pcfg2 = host_net_pod(d, "pidtarget2");
  auto pod2 = run_pod(d, pcfg2);
  st = create(d, pod2, pcfg2, targeting(container_config("stranger", loop), target), &id);
  CHECK(st.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK(st.error_message().find("another pod") != std::string::npos);

  remove_pod(d, pod2);
  remove_pod(d, pod);
  check_nothing_left(d, {pod, pod2, target, debug, other, idle});
}

TEST_CASE("runc pod: a tty container gets a terminal and its output still reaches the CRI log",
          "[cri][runc]") {
  CriDaemon d;
  Janitor j{d};
  d.start();
  auto pcfg = host_net_pod(d, "tty");
  auto pod = run_pod(d, pcfg);
  auto cfg = container_config(
      "term", {"sh", "-c", "[ -t 0 ] && [ -t 1 ] && echo is-a-tty; tty; echo bye >&2; exit 3"});
  cfg.set_tty(true);
  auto term = start_container(d, pod, pcfg, cfg);
  auto s = wait_exited(d, term);
  CHECK(s.state() == rt::CONTAINER_EXITED);
  CHECK(s.exit_code() == 3);
  auto log = read_file(fs::path(pcfg.log_directory()) / "term.log");
  INFO(log);
  // One stream on a terminal: everything is stdout. The terminal turns \n into \r\n (onlcr);
  // the \r stays in the content, as with CRI-O. The pty may hand over a line in pieces (the
  // text, then its \r\n): P lines, which kubelet joins up to the next F line.
  CHECK(log_messages(log) ==
        std::vector<std::string>{"stdout is-a-tty\r", "stdout /dev/pts/0\r", "stdout bye\r"});
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    if (line.ends_with('\r')) line.pop_back();
    CHECK(std::regex_match(line, kLogLine));
  }

  // A long-running tty container: ExecSync (no terminal of its own) and a stop.
  auto loop_cfg = container_config(
      "termloop", {"sh", "-c", "tty > /tmp/ttyname; while true; do sleep 1; done"});
  loop_cfg.set_tty(true);
  auto loop = start_container(d, pod, pcfg, loop_cfg);
  auto end = Clock::now() + 10s;
  while (exec_out(d, loop, {"sh", "-c", "cat /tmp/ttyname 2>/dev/null; true"}).empty() && Clock::now() < end)
    std::this_thread::sleep_for(100ms);
  CHECK(exec_out(d, loop, {"cat", "/tmp/ttyname"}) == "/dev/pts/0\n");
  CHECK(exec_out(d, loop, {"echo", "plain"}) == "plain\n");
  stop_container(d, loop, 5);
  CHECK(status_of(d, loop).state() == rt::CONTAINER_EXITED);

  remove_pod(d, pod);
  check_nothing_left(d, {pod, term, loop});
}

TEST_CASE("runc pods: 20 created concurrently, each runs and answers, all removed cleanly",
          "[cri][runc]") {
  // The daemon's side of "kubelet calls in parallel": 20 RunPodSandbox → CreateContainer →
  // StartContainer → ExecSync chains at once (VM pods do the same in test_cri_vm, 20 on a
  // real-KVM host and 2 in the KVM test box).
  CriDaemon d;
  Janitor j{d};
  d.start();
  constexpr int kPods = 20;
  std::vector<std::future<std::string>> runs;
  for (int i = 0; i < kPods; ++i) {
    runs.push_back(std::async(std::launch::async, [&d, i] {
      auto ccfg = container_config("main", {"sleep", "1000"});
      ccfg.mutable_linux()->mutable_security_context()->set_privileged(true);
      return run_and_probe(d, privileged_pod(d, fmt::format("many-{}", i)), ccfg, std::to_string(i));
    }));
  }
  for (auto& r : runs) CHECK(r.get() == "");
  rt::ListPodSandboxResponse lp;
  REQUIRE(d.runtime().ListPodSandbox(deadline().get(), {}, &lp).ok());
  CHECK(lp.items_size() == kPods);
  rt::ListContainersResponse lc;
  REQUIRE(d.runtime().ListContainers(deadline().get(), {}, &lc).ok());
  CHECK(lc.containers_size() == kPods);
  CHECK(remove_all_pods_concurrently(d) == "");
  CHECK(runc_containers(d).empty());
  CHECK(mounts_under(d.state()).empty());
}
