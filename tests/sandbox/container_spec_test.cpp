// Image config + caller options -> CreateContainerRequest: the defaults Docker users expect.

#include <catch2/catch.hpp>

#include "sandbox/container_spec.hpp"

using namespace frakti;
using sandbox::ContainerOptions;

namespace {

image::ImageConfig busybox_like() {
  image::ImageConfig c;
  c.cmd = {"sh"};
  c.env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "IMAGE_VAR=1"};
  return c;
}

std::vector<std::string> list(const google::protobuf::RepeatedPtrField<std::string>& f) { return {f.begin(), f.end()}; }

}  // namespace

TEST_CASE("command: entrypoint and cmd combine like Docker", "[sandbox]") {
  auto img = busybox_like();
  ContainerOptions o;
  CHECK(sandbox::resolve_command(img, o) == std::vector<std::string>{"sh"});
  o.cmd = {"echo", "hi"};
  CHECK(sandbox::resolve_command(img, o) == std::vector<std::string>{"echo", "hi"});
  img.entrypoint = {"/init"};
  CHECK(sandbox::resolve_command(img, o) == std::vector<std::string>{"/init", "echo", "hi"});
  o.cmd.clear();
  CHECK(sandbox::resolve_command(img, o) == std::vector<std::string>{"/init", "sh"});
  // A new entrypoint drops the image's Cmd.
  o.entrypoint = std::vector<std::string>{"/bin/date"};
  CHECK(sandbox::resolve_command(img, o) == std::vector<std::string>{"/bin/date"});
  image::ImageConfig empty;
  CHECK_THROWS_WITH(sandbox::resolve_command(empty, ContainerOptions{}), Catch::Contains("no command"));
}

TEST_CASE("env: caller over image over defaults, one entry per key", "[sandbox]") {
  auto img = busybox_like();
  ContainerOptions o;
  o.env = {"IMAGE_VAR=2", "NEW", "X=a=b"};
  o.hostname = "h1";
  o.terminal = true;
  auto env = sandbox::resolve_env(img, o);
  CHECK(env == std::vector<std::string>{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=h1", "TERM=xterm",
                                        "IMAGE_VAR=2", "NEW=", "X=a=b"});
  o.env = {"=oops"};
  CHECK_THROWS_AS(sandbox::resolve_env(img, o), std::invalid_argument);
}

TEST_CASE("user specs", "[sandbox]") {
  agent::v1::Process p;
  sandbox::set_user(p, "1000:100");
  CHECK(p.user().uid() == 1000);
  CHECK(p.user().gid() == 100);
  p.Clear();
  sandbox::set_user(p, "65534");
  CHECK(p.user().gid() == 65534);
  p.Clear();
  sandbox::set_user(p, "nobody");
  CHECK(p.user().username() == "nobody");
  p.Clear();
  sandbox::set_user(p, "");
  CHECK(p.user().uid() == 0);
  CHECK(p.user().username().empty());
  for (const char* bad : {":5", "1000:staff", "alice:staff"}) {
    INFO(bad);
    agent::v1::Process q;
    CHECK_THROWS_AS(sandbox::set_user(q, bad), std::invalid_argument);
  }
}

TEST_CASE("capabilities: defaults, drop, add, ALL", "[sandbox]") {
  auto img = busybox_like();
  ContainerOptions o;
  o.id = "c1";
  auto r = sandbox::make_create_request(img, o);
  CHECK(list(r.process().capabilities().bounding()) == sandbox::default_capabilities());
  CHECK(list(r.process().capabilities().effective()) == sandbox::default_capabilities());

  o.cap_drop = {"chown", "CAP_KILL"};
  o.cap_add = {"NET_ADMIN"};
  auto caps = list(sandbox::make_create_request(img, o).process().capabilities().bounding());
  CHECK(std::find(caps.begin(), caps.end(), "CAP_CHOWN") == caps.end());
  CHECK(std::find(caps.begin(), caps.end(), "CAP_KILL") == caps.end());
  CHECK(std::find(caps.begin(), caps.end(), "CAP_NET_ADMIN") != caps.end());

  o.cap_drop = {"ALL"};
  o.cap_add = {};
  CHECK(sandbox::make_create_request(img, o).process().capabilities().bounding_size() == 0);
  o.cap_add = {"ALL"};
  CHECK(sandbox::make_create_request(img, o).process().capabilities().bounding_size() >= 40);
  o.cap_add = {"NOT_A_CAP"};
  CHECK_THROWS_WITH(sandbox::make_create_request(img, o), Catch::Contains("CAP_NOT_A_CAP"));
}

TEST_CASE("request: rootfs drive, mounts, masks, limits, init", "[sandbox]") {
  auto img = busybox_like();
  img.working_dir = "/srv";
  img.user = "1000";
  ContainerOptions o;
  o.id = "c1";
  o.memory_limit_bytes = 64 << 20;
  o.cpus = 1.5;
  o.read_only_rootfs = true;
  auto r = sandbox::make_create_request(img, o);
  CHECK(r.container_id() == "c1");
  CHECK(r.rootfs().drive_serial() == "image");
  CHECK(r.readonly_rootfs());
  CHECK(r.init());
  CHECK(r.process().cwd() == "/srv");
  CHECK(r.process().user().uid() == 1000);
  CHECK(r.resources().memory_limit_bytes() == 64 << 20);
  CHECK(r.resources().cpu_quota_us() == 150000);
  CHECK(r.resources().cpu_period_us() == 100000);
  std::vector<std::string> dests;
  for (auto& m : r.mounts()) dests.push_back(m.destination());
  CHECK(dests == std::vector<std::string>{"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys"});
  CHECK(list(r.masked_paths()).size() >= 5);
  o.privileged = true;
  auto p = sandbox::make_create_request(img, o);
  CHECK(p.masked_paths_size() == 0);
  CHECK(p.process().capabilities().bounding_size() >= 40);
}
