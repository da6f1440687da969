// frakti-vmm flag parsing and validation, with a table of bad command lines.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>

#include "vmm/config/cli.hpp"

using namespace frakti::vmm::config;

namespace {
struct TempFile {
  std::string path;
  explicit TempFile(const char* name) {
    char tmpl[] = "/tmp/frakti-cli-XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    dir = tmpl;
    path = dir + "/" + name;
    std::ofstream(path) << "x";
  }
  ~TempFile() {
    ::unlink(path.c_str());
    ::rmdir(dir.c_str());
  }
  std::string dir;
};

VmConfig parse_ok(const std::vector<std::string>& args) {
  auto r = parse_args(args);
  REQUIRE(std::holds_alternative<VmConfig>(r));
  return std::get<VmConfig>(r);
}
}  // namespace

TEST_CASE("a minimal command line gets the defaults", "[config]") {
  TempFile k("vmlinux"), i("initrd");
  auto c = parse_ok({"--kernel", k.path, "--initrd", i.path});
  REQUIRE(c.kernel == k.path);
  REQUIRE(c.cpus == 1);
  REQUIRE(c.memory_mib == 256);
  REQUIRE(c.console.kind == ConsoleConfig::Kind::stdio);
  REQUIRE(c.base_cmdline() == default_cmdline());
  for (const char* p : {"console=ttyS0", "reboot=k", "panic=1", "pci=off", "quiet"})
    REQUIRE(default_cmdline().find(p) != std::string::npos);
}

TEST_CASE("every option is parsed, with --flag=value too", "[config]") {
  TempFile k("vmlinux"), i("initrd");
  auto c = parse_ok({"--kernel=" + k.path, "--initrd", i.path, "--cpus", "4", "--memory=1024",
                     "--console", "file:/tmp/x.log", "--log-level", "debug", "--cmdline",
                     "console=ttyS0", "--append", "frakti.poweroff=1", "--append", "a=b"});
  REQUIRE(c.cpus == 4);
  REQUIRE(c.memory_mib == 1024);
  REQUIRE(c.console.kind == ConsoleConfig::Kind::file);
  REQUIRE(c.console.path == "/tmp/x.log");
  REQUIRE(c.log_level == frakti::common::log::Level::debug);
  REQUIRE(c.base_cmdline() == "console=ttyS0 frakti.poweroff=1 a=b");
  REQUIRE(parse_ok({"--kernel", k.path, "--initrd", i.path, "--console", "none"}).console.kind ==
          ConsoleConfig::Kind::none);
}

TEST_CASE("drives and vsock", "[config]") {
  TempFile k("vmlinux"), i("initrd"), img("rootfs.img");
  auto c = parse_ok({"--kernel", k.path, "--initrd", i.path, "--drive",
                     "path=" + img.path + ",ro,serial=root", "--drive", "empty,serial=slot1",
                     "--vsock", "cid=7,uds=/tmp/v.sock"});
  REQUIRE(c.drives.size() == 2);
  REQUIRE(c.drives[0].path == img.path);
  REQUIRE(c.drives[0].read_only);
  REQUIRE(c.drives[0].serial == "root");
  REQUIRE_FALSE(c.drives[1].path);
  REQUIRE_FALSE(c.drives[1].read_only);
  REQUIRE(c.drives[1].serial == "slot1");
  REQUIRE(c.vsock);
  REQUIRE(c.vsock->guest_cid == 7);
  REQUIRE(c.vsock->uds_path == "/tmp/v.sock");
  REQUIRE(usage().find("--drive") != std::string::npos);
}

TEST_CASE("--net and --control", "[config]") {
  TempFile k("vmlinux"), i("initrd");
  auto c = parse_ok({"--kernel", k.path, "--initrd", i.path, "--net", "tap=fdt0", "--net",
                     "tap=fdt1,mac=52:54:00:AB:cd:09", "--control", "/run/vm.sock"});
  REQUIRE(c.nets.size() == 2);
  CHECK(c.nets[0].tap == "fdt0");
  CHECK(c.nets[0].mac == std::array<uint8_t, 6>{0x02, 0xf7, 0, 0, 0, 1});
  CHECK(c.nets[1].mac == std::array<uint8_t, 6>{0x52, 0x54, 0, 0xab, 0xcd, 0x09});
  CHECK(c.control_path == "/run/vm.sock");
  CHECK_FALSE(parse_ok({"--kernel", k.path, "--initrd", i.path}).control_path);
}

TEST_CASE("more virtio devices than slots is an error", "[config]") {
  TempFile k("vmlinux"), i("initrd");
  std::vector<std::string> args = {"--kernel", k.path, "--initrd", i.path, "--vsock",
                                   "cid=3,uds=/tmp/v"};
  for (int n = 0; n < 18; n++) args.insert(args.end(), {"--drive", "empty"});
  REQUIRE(parse_ok(args).drives.size() == 18);
  args.insert(args.end(), {"--drive", "empty"});
  REQUIRE_THROWS_WITH(parse_args(args), Catch::Contains("too many virtio devices"));
}

TEST_CASE("--help wins over everything", "[config]") {
  REQUIRE(std::holds_alternative<HelpRequested>(parse_args({"--cpus", "99", "--help"})));
  auto u = usage();
  REQUIRE(u.find("--kernel") != std::string::npos);
  REQUIRE(u.find("exit status") != std::string::npos);
  REQUIRE(u.find("2  the guest rebooted") != std::string::npos);
}

TEST_CASE("bad command lines are rejected with a message naming the problem", "[config]") {
  TempFile k("vmlinux"), i("initrd");
  const std::vector<std::string> base = {"--kernel", k.path, "--initrd", i.path};
  struct Case {
    std::vector<std::string> extra;
    const char* message;
    bool with_base = true;
  };
  const std::vector<Case> cases = {
      {{"--memory", "12"}, "--memory 12: must be at least 64 MiB"},
      {{"--memory", "99999999"}, "must be at most"},
      {{"--memory", "12x"}, "--memory 12x: not a number"},
      {{"--memory", "-5"}, "not a number"},
      {{"--memory", ""}, "not a number"},
      {{"--cpus", "0"}, "--cpus 0: must be between 1 and 32"},
      {{"--cpus", "33"}, "must be between 1 and 32"},
      {{"--cpus", "184467440737095516160"}, "not a number"},
      {{"--cpus"}, "--cpus needs N"},
      {{"--console", "tty"}, "use stdout, file:PATH, unix:PATH or none"},
      {{"--console", "file:"}, "use stdout"},
      {{"--log-level", "loud"}, "unknown log level"},
      {{"--frobnicate"}, "unknown option --frobnicate"},
      {{"--help=yes"}, "unknown option"},
      {{"stray"}, "unexpected argument 'stray'"},
      {{"--cmdline", std::string(1600, 'a')}, "at most 1536"},
      {{"--append", std::string("a\nb")}, "newline"},
      {{"--initrd", "/nonexistent/initrd"}, "--initrd /nonexistent/initrd: no such file"},
      {{"--kernel", "/tmp"}, "not a regular file"},
      {{"--initrd", i.path}, "--kernel is required", false},
      {{"--kernel", k.path}, "--initrd is required", false},
      {{"--drive", "ro"}, "exactly one of path=FILE or empty"},
      {{"--drive", "empty,path=" + i.path}, "exactly one of path=FILE or empty"},
      {{"--drive", "path="}, "unknown drive option 'path'"},
      {{"--drive", "path=/nonexistent/x.img"}, "--drive /nonexistent/x.img: no such file"},
      {{"--drive", "empty,serial=" + std::string(21, 's')}, "serial is longer than 20"},
      {{"--drive", "empty,cache=none"}, "unknown drive option 'cache'"},
      {{"--drive", "empty,ro=1"}, "unknown drive option 'ro'"},
      {{"--vsock", "cid=2,uds=/tmp/v"}, "cid must be between 3"},
      {{"--vsock", "cid=x,uds=/tmp/v"}, "not a number"},
      {{"--vsock", "cid=3"}, "uds=PATH is required"},
      {{"--vsock", "cid=3,uds=/" + std::string(100, 'u')}, "uds=PATH is required"},
      {{"--vsock", "cid=3,uds=/tmp/v,port=5"}, "unknown vsock option 'port'"},
      {{"--net", "mac=02:00:00:00:00:01"}, "tap=NAME is required"},
      {{"--net", "tap="}, "unknown net option 'tap'"},
      {{"--net", "tap=" + std::string(16, 't')}, "at most 15 bytes"},
      {{"--net", "tap=a/b"}, "not a valid interface name"},
      {{"--net", "tap=a b"}, "not a valid interface name"},
      {{"--net", "tap=t0,mac=01:00:00:00:00:01"}, "multicast"},
      {{"--net", "tap=t0,mac=02:00:00:00:0:01"}, "mac must look like"},
      {{"--net", "tap=t0,mac=02-00-00-00-00-01"}, "mac must look like"},
      {{"--net", "tap=t0,mac=02:00:00:00:00:0g"}, "mac must look like"},
      {{"--net", "tap=t0,mac=02:00:00:00:00:+1"}, "mac must look like"},
      {{"--net", "tap=t0,queues=2"}, "unknown net option 'queues'"},
      {{"--net", "tap=t0", "--net", "tap=t0"}, "given twice"},
      {{"--net", "tap=t0,mac=02:00:00:00:00:01", "--net", "tap=t1,mac=02:00:00:00:00:01"},
       "has the MAC of"},
      {{"--control", ""}, "path must be 1 to 107 bytes"},
      {{"--control", "/" + std::string(107, 'c')}, "path must be 1 to 107 bytes"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> args = c.with_base ? base : std::vector<std::string>{};
    args.insert(args.end(), c.extra.begin(), c.extra.end());
    INFO("case: " << c.message);
    REQUIRE_THROWS_WITH(parse_args(args), Catch::Contains(c.message));
  }
}
