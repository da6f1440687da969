#include "agent/container/spec.hpp"

#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>

#include <catch2/catch.hpp>
#include <functional>

#include "agent/agent_error.hpp"

using namespace frakti::agent;
using namespace frakti::agent::container;

namespace {

v1::CreateContainerRequest good_request() {
  v1::CreateContainerRequest r;
  r.set_container_id("web-1");
  r.mutable_rootfs()->set_drive_serial("img1");
  r.mutable_process()->add_args("sh");
  r.mutable_process()->add_env("A=b");
  r.set_hostname("web");
  for (auto t : {v1::Namespace::TYPE_PID, v1::Namespace::TYPE_IPC, v1::Namespace::TYPE_UTS,
                 v1::Namespace::TYPE_MOUNT}) {
    auto* n = r.add_namespaces();
    n->set_type(t);
  }
  auto* m = r.add_mounts();
  m->set_destination("/dev");
  m->set_type("tmpfs");
  m->set_path("tmpfs");
  m->add_options("nosuid");
  m->add_options("strictatime");
  m->add_options("mode=755");
  m->add_options("size=65536k");
  auto* b = r.add_mounts();
  b->set_destination("/etc/hosts");
  b->set_type("bind");
  b->set_path("/run/frakti/hosts");
  b->add_options("rbind");
  b->add_options("ro");
  b->add_options("rprivate");
  return r;
}

void expect_invalid(const std::function<void(v1::CreateContainerRequest&)>& change,
                    const std::string& message) {
  auto r = good_request();
  change(r);
  try {
    parse_container_spec(r);
    FAIL("accepted: " << message);
  } catch (const AgentError& e) {
    REQUIRE(e.code() == v1::Error::CODE_INVALID_ARGUMENT);
    REQUIRE_THAT(e.what(), Catch::Contains(message));
  }
}

}  // namespace

TEST_CASE("spec: a good request becomes plain values", "[agent][spec]") {
  auto spec = parse_container_spec(good_request());
  REQUIRE(spec.id == "web-1");
  REQUIRE(spec.rootfs.fs_type == "erofs");
  REQUIRE(spec.process.cwd == "/");
  REQUIRE(spec.namespaces.clone_flags ==
          (CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS));
  REQUIRE_FALSE(spec.namespaces.pod_pid);
  REQUIRE(spec.mounts.size() == 2);
  REQUIRE(spec.mounts[0].flags == (MS_NOSUID | MS_STRICTATIME));
  REQUIRE(spec.mounts[0].data == "mode=755,size=65536k");
  REQUIRE(spec.mounts[1].bind);
  REQUIRE(spec.mounts[1].recursive);
  REQUIRE(spec.mounts[1].flags == MS_RDONLY);
  REQUIRE(spec.mounts[1].propagation == (MS_PRIVATE | MS_REC));
}

TEST_CASE("spec: resources and capabilities are converted", "[agent][spec]") {
  auto r = good_request();
  r.mutable_resources()->set_cpu_shares(1024);
  r.mutable_resources()->set_memory_limit_bytes(64 << 20);
  auto* caps = r.mutable_process()->mutable_capabilities();
  caps->add_bounding("CAP_KILL");
  caps->add_permitted("CAP_KILL");
  caps->add_effective("CAP_KILL");
  caps->add_inheritable("CAP_KILL");
  caps->add_ambient("CAP_KILL");
  auto* lim = r.mutable_process()->add_rlimits();
  lim->set_type("RLIMIT_NOFILE");
  lim->set_soft(100);
  lim->set_hard(200);
  r.mutable_process()->mutable_user()->set_username("nobody");
  auto* ns = r.add_namespaces();
  ns->set_type(v1::Namespace::TYPE_NETWORK);
  ns->set_mode(v1::Namespace::MODE_POD);
  auto spec = parse_container_spec(r);
  REQUIRE(spec.resources.cpu_weight == 39);  // 1 + (1022 * 9999) / 262142
  REQUIRE(spec.process.capabilities.ambient == std::vector<int>{5});
  REQUIRE(spec.process.rlimits.size() == 1);
  REQUIRE(spec.process.rlimits[0].resource == RLIMIT_NOFILE);
  REQUIRE(spec.process.user.username == "nobody");
  REQUIRE_FALSE(spec.namespaces.own(CLONE_NEWNET));
}

TEST_CASE("spec: hostile request table", "[agent][spec]") {
  using R = v1::CreateContainerRequest;
  expect_invalid([](R& r) { r.set_container_id(""); }, "container_id ''");
  expect_invalid([](R& r) { r.set_container_id("../etc"); }, "container_id '../etc'");
  expect_invalid([](R& r) { r.set_container_id("a/b"); }, "container_id 'a/b'");
  expect_invalid([](R& r) { r.set_container_id(std::string(129, 'a')); }, "container_id");
  expect_invalid([](R& r) { r.mutable_rootfs()->set_drive_serial(""); }, "rootfs.drive_serial ''");
  expect_invalid([](R& r) { r.mutable_rootfs()->set_drive_serial("../../dev/sda"); },
                 "rootfs.drive_serial");
  expect_invalid([](R& r) { r.mutable_rootfs()->set_drive_serial(std::string(21, 's')); },
                 "rootfs.drive_serial");
  expect_invalid([](R& r) { r.mutable_rootfs()->set_fs_type("nfs"); }, "rootfs.fs_type 'nfs'");
  expect_invalid([](R& r) { r.mutable_process()->clear_args(); }, "process.args is empty");
  expect_invalid([](R& r) { r.mutable_process()->set_args(0, ""); }, "process.args[0] is empty");
  expect_invalid([](R& r) { r.mutable_process()->add_args(std::string("a\0b", 3)); }, "NUL");
  expect_invalid([](R& r) { r.mutable_process()->add_env("NOEQUALS"); }, "KEY=value");
  expect_invalid([](R& r) { r.mutable_process()->add_env("=x"); }, "KEY=value");
  expect_invalid([](R& r) { r.mutable_process()->set_cwd("relative"); },
                 "process.cwd 'relative' is not an absolute path");
  expect_invalid([](R& r) { r.mutable_process()->set_cwd("/a/../b"); }, "'..'");
  expect_invalid([](R& r) { r.mutable_process()->mutable_user()->set_username("a:b"); },
                 "not a user name");
  expect_invalid(
      [](R& r) {
        r.mutable_process()->set_terminal(true);
        r.mutable_process()->set_stderr_stream(3);
      },
      "no separate stderr");
  expect_invalid(
      [](R& r) {
        r.mutable_process()->set_stdout_stream(3);
        r.mutable_process()->set_stderr_stream(3);
      },
      "used twice");
  expect_invalid([](R& r) { r.mutable_process()->mutable_capabilities()->add_bounding("CAP_FLY"); },
                 "unknown capability 'CAP_FLY'");
  expect_invalid(
      [](R& r) { r.mutable_process()->mutable_capabilities()->add_effective("CAP_KILL"); },
      "must also be permitted");
  expect_invalid(
      [](R& r) {
        auto* c = r.mutable_process()->mutable_capabilities();
        c->add_permitted("CAP_KILL");
        c->add_ambient("CAP_KILL");
      },
      "ambient");
  expect_invalid([](R& r) { r.mutable_process()->add_rlimits()->set_type("RLIMIT_BOGUS"); },
                 "unknown type 'RLIMIT_BOGUS'");
  expect_invalid(
      [](R& r) {
        auto* l = r.mutable_process()->add_rlimits();
        l->set_type("RLIMIT_NOFILE");
        l->set_soft(10);
        l->set_hard(5);
      },
      "soft 10 is above hard 5");
  expect_invalid(
      [](R& r) {
        r.mutable_process()->set_has_oom_score_adj(true);
        r.mutable_process()->set_oom_score_adj(1001);
      },
      "oom_score_adj 1001");
  expect_invalid(
      [](R& r) {
        r.mutable_process()->set_has_umask(true);
        r.mutable_process()->set_umask(01000);
      },
      "umask");
  expect_invalid([](R& r) { r.set_hostname("bad host"); }, "hostname 'bad host'");
  expect_invalid([](R& r) { r.set_hostname(std::string(65, 'h')); }, "longer than 64");
  expect_invalid([](R& r) { r.clear_namespaces(); }, "needs a UTS namespace");
  expect_invalid([](R& r) { r.add_namespaces()->set_type(v1::Namespace::TYPE_PID); },
                 "listed twice");
  expect_invalid([](R& r) { r.add_namespaces()->set_type(v1::Namespace::TYPE_USER); },
                 "user namespaces are not supported");
  expect_invalid([](R& r) { r.add_namespaces()->set_type(v1::Namespace::TYPE_UNSPECIFIED); },
                 "unknown namespace type 0");
  expect_invalid([](R& r) { r.mutable_namespaces(3)->set_mode(v1::Namespace::MODE_POD); },
                 "pod-wide mount namespace");
  expect_invalid([](R& r) { r.mutable_mounts(0)->set_destination("dev"); },
                 "mounts[0].destination 'dev' is not an absolute path");
  expect_invalid([](R& r) { r.mutable_mounts(0)->set_destination("/dev/../../etc"); }, "'..'");
  expect_invalid([](R& r) { r.mutable_mounts(0)->set_type("nfs4"); },
                 "unsupported mount type 'nfs4'");
  expect_invalid([](R& r) { r.mutable_mounts(0)->add_options("a,b"); }, "comma");
  expect_invalid([](R& r) { r.mutable_mounts(1)->set_path("relative"); }, "absolute source path");
  expect_invalid([](R& r) { r.mutable_mounts(1)->add_options("size=1m"); },
                 "unknown bind mount option 'size=1m'");
  expect_invalid([](R& r) { r.mutable_mounts(0)->set_type("ext4"); }, "needs a drive_serial");
  expect_invalid([](R& r) { r.mutable_mounts(0)->set_type("blockdev"); },
                 "a blockdev mount needs a drive_serial");
  expect_invalid(
      [](R& r) {
        r.mutable_mounts(0)->set_type("blockdev");
        r.mutable_mounts(0)->set_drive_serial("dev-abc-0");
        r.mutable_mounts(0)->clear_options();
        r.mutable_mounts(0)->add_options("size=1m");
      },
      "unknown blockdev mount option 'size=1m'");
  expect_invalid([](R& r) { r.mutable_mounts(0)->set_drive_serial("../x"); },
                 "not a virtio-blk serial");
  expect_invalid(
      [](R& r) {
        r.mutable_mounts(0)->set_type("");
        r.mutable_mounts(0)->clear_options();
      },
      "needs a type or the bind option");
  expect_invalid([](R& r) { r.add_masked_paths("proc/kcore"); }, "masked_paths[0]");
  expect_invalid([](R& r) { r.add_readonly_paths("/proc/../etc"); }, "readonly_paths[0]");
  expect_invalid([](R& r) { r.mutable_resources()->set_memory_limit_bytes(-5); },
                 "memory_limit_bytes -5");
  expect_invalid(
      [](R& r) {
        r.mutable_resources()->set_memory_limit_bytes(100);
        r.mutable_resources()->set_memory_swap_limit_bytes(50);
      },
      "memory plus swap");
  expect_invalid([](R& r) { r.mutable_resources()->set_cpu_quota_us(-2); }, "cpu_quota_us -2");
  expect_invalid([](R& r) { r.mutable_resources()->set_cpu_period_us(10); }, "cpu_period_us 10");
  expect_invalid([](R& r) { r.mutable_resources()->set_cpu_weight(10001); }, "cpu_weight 10001");
  expect_invalid([](R& r) { r.mutable_resources()->set_pids_limit(-3); }, "pids_limit -3");
  expect_invalid([](R& r) { r.mutable_resources()->set_cpuset_cpus("0-1; rm"); }, "not a CPU list");
  expect_invalid([](R& r) { (*r.mutable_sysctls())["../../etc/passwd"] = "x"; }, "sysctl name");
  expect_invalid([](R& r) { (*r.mutable_sysctls())["net.ipv4.ip_forward"] = "1\n2"; }, "newline");
  expect_invalid([](R& r) { r.set_seccomp_profile_json("{"); },
                 "seccomp profile is not a JSON object");
  expect_invalid(
      [](R& r) {
        r.mutable_rootfs()->mutable_overlay()->set_upper_kind(v1::Overlay::UPPER_DRIVE);
        r.mutable_rootfs()->mutable_overlay()->set_upper_drive_serial("img1");
      },
      "is the read-only image drive");
}

TEST_CASE("spec: process of an exec", "[agent][spec]") {
  v1::Process p;
  try {
    parse_process_spec(p, "exec_process.process");
    FAIL("accepted");
  } catch (const AgentError& e) {
    REQUIRE_THAT(e.what(), Catch::Contains("exec_process.process.args is empty"));
  }
  p.add_args("ls");
  p.set_terminal(true);
  p.set_terminal_rows(24);
  p.set_terminal_cols(80);
  auto spec = parse_process_spec(p, "exec_process.process");
  REQUIRE(spec.terminal);
  REQUIRE(spec.rows == 24);
}

TEST_CASE("spec: ids and serials", "[agent][spec]") {
  REQUIRE(valid_id("a"));
  REQUIRE(valid_id("web_1.2-x"));
  REQUIRE_FALSE(valid_id(".hidden"));
  REQUIRE_FALSE(valid_id("-flag"));
  REQUIRE_FALSE(valid_id("a b"));
  REQUIRE(valid_serial("frakti-img-0001"));
  REQUIRE_FALSE(valid_serial(".."));
  REQUIRE_FALSE(valid_serial("a/b"));
  REQUIRE_FALSE(valid_serial(std::string(21, 'x')));
}
