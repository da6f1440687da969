// Tests guest-kernel/check-config.sh (the guard against options Kconfig drops silently) and
// that guest.config still asks for everything the VMM and the agent rely on.
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

namespace fs = std::filesystem;

namespace {

fs::path source_dir() {
  const char* src = std::getenv("FRAKTI_SOURCE_DIR");
  REQUIRE(src != nullptr);
  return src;
}

// Runs check-config.sh on the two texts; returns its exit code and stderr.
std::pair<int, std::string> check(const std::string& fragment, const std::string& config) {
  char tmpl[] = "/tmp/frakti-kconfig-test.XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  fs::path dir = tmpl;
  std::ofstream(dir / "fragment") << fragment;
  std::ofstream(dir / "config") << config;
  std::string command = (source_dir() / "guest-kernel/check-config.sh").string() + " " +
                        (dir / "fragment").string() + " " + (dir / "config").string() + " 2>&1";
  FILE* p = popen(command.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = pclose(p);
  fs::remove_all(dir);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace

TEST_CASE("check-config.sh accepts a config that kept every option", "[guest-kernel]") {
  auto [rc, out] = check(
      "# comment\nCONFIG_A=y\nCONFIG_NR=32\nCONFIG_S=\"a b\"\n# CONFIG_OFF is not set\n"
      "# CONFIG_ABSENT is not set\n\nCONFIG_LAST=y",  // no final newline
      "CONFIG_A=y\nCONFIG_NR=32\nCONFIG_S=\"a b\"\n# CONFIG_OFF is not set\nCONFIG_LAST=y\n");
  INFO(out);
  CHECK(rc == 0);
}

TEST_CASE("check-config.sh names every option Kconfig dropped or changed", "[guest-kernel]") {
  struct Case {
    std::string fragment, config, named;
  };
  const Case cases[] = {
      {"CONFIG_A=y\n", "", "CONFIG_A=y (got: absent)"},
      {"CONFIG_A=y\n", "# CONFIG_A is not set\n", "CONFIG_A=y (got: # CONFIG_A is not set)"},
      {"CONFIG_A=y\n", "CONFIG_A=m\n", "CONFIG_A=y (got: CONFIG_A=m)"},
      {"CONFIG_A=y\n", "CONFIG_AB=y\n", "CONFIG_A=y (got: absent)"},  // no prefix matches
      {"CONFIG_A=y\n", "xCONFIG_A=y\n", "CONFIG_A=y (got: absent)"},
      {"CONFIG_NR=32\n", "CONFIG_NR=320\n", "CONFIG_NR=32 (got: CONFIG_NR=320)"},
      {"CONFIG_NR=3.\n", "CONFIG_NR=32\n", "CONFIG_NR=3."},  // not a regex
      {"# CONFIG_OFF is not set\n", "CONFIG_OFF=y\n", "CONFIG_OFF must be off (got: CONFIG_OFF=y)"},
      {"# CONFIG_OFF is not set\n", "CONFIG_OFF=m\n", "CONFIG_OFF must be off (got: CONFIG_OFF=m)"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.fragment, c.config);
    auto [rc, out] = check(c.fragment, c.config);
    CHECK(rc == 1);
    CHECK(out.find(c.named) != std::string::npos);
  }
  // All failures are reported at once, not just the first.
  auto [rc, out] = check("CONFIG_A=y\nCONFIG_B=y\n", "");
  CHECK(rc == 1);
  CHECK(out.find("CONFIG_A=y") != std::string::npos);
  CHECK(out.find("CONFIG_B=y") != std::string::npos);
}

TEST_CASE("guest.config asks for every option frakti depends on", "[guest-kernel]") {
  std::ifstream in(source_dir() / "guest-kernel/guest.config");
  REQUIRE(in);
  std::set<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.insert(line);
  // What frakti-vmm, the agent and the containers need (docs/guest.md says why).
  const char* required_on[] = {"64BIT",
                               "SMP",
                               "X86_MPPARSE",
                               "X86_LOCAL_APIC",
                               "X86_IO_APIC",
                               "NO_HZ_IDLE",
                               "HIGH_RES_TIMERS",
                               "HYPERVISOR_GUEST",
                               "PARAVIRT",
                               "KVM_GUEST",
                               "PARAVIRT_CLOCK",
                               "PRINTK",
                               "BUG",
                               "MULTIUSER",
                               "FUTEX",
                               "EPOLL",
                               "SIGNALFD",
                               "TIMERFD",
                               "EVENTFD",
                               "SHMEM",
                               "FILE_LOCKING",
                               "POSIX_MQUEUE",
                               "BINFMT_ELF",
                               "BINFMT_SCRIPT",
                               "CGROUPS",
                               "MEMCG",
                               "CGROUP_SCHED",
                               "FAIR_GROUP_SCHED",
                               "CFS_BANDWIDTH",
                               "CGROUP_PIDS",
                               "CPUSETS",
                               "NAMESPACES",
                               "UTS_NS",
                               "IPC_NS",
                               "USER_NS",
                               "PID_NS",
                               "NET_NS",
                               "SECCOMP",
                               "SECCOMP_FILTER",
                               "TTY",
                               "UNIX98_PTYS",
                               "SERIAL_8250",
                               "SERIAL_8250_CONSOLE",
                               "VT",
                               "SERIO_I8042",
                               "KEYBOARD_ATKBD",
                               "VIRTIO_MMIO",
                               "VIRTIO_MMIO_CMDLINE_DEVICES",
                               "VIRTIO_BLK",
                               "NET",
                               "INET",
                               "UNIX",
                               "PACKET",
                               "NETDEVICES",
                               "VIRTIO_NET",
                               "VSOCKETS",
                               "VIRTIO_VSOCKETS",
                               "BLK_DEV_INITRD",
                               "RD_GZIP",
                               "RD_ZSTD",
                               "PROC_FS",
                               "SYSFS",
                               "TMPFS",
                               "DEVTMPFS",
                               "DEVTMPFS_MOUNT",
                               "EXT4_FS",
                               "EROFS_FS",
                               "OVERLAY_FS",
                               "DEBUG_INFO_NONE"};
  for (const char* name : required_on) {
    CAPTURE(name);
    CHECK(lines.count(std::string("CONFIG_") + name + "=y") == 1);
  }
  const char* required_off[] = {"MODULES", "ELF_CORE", "VT_CONSOLE", "VGA_CONSOLE", "TUN"};
  for (const char* name : required_off) {
    CAPTURE(name);
    CHECK(lines.count(std::string("# CONFIG_") + name + " is not set") == 1);
  }
  CHECK(lines.count("CONFIG_NR_CPUS=32") == 1);
}
