// End to end: frakti-vmm with its seccomp filters on (the default) boots the real guest to its
// ready line and exits normally (status 2: the guest reboots); a syscall missing from a role's
// table would kill it with SIGSYS instead.
// Needs ${FRAKTI_BUILD_DIR}/guest/{vmlinux,initrd.img}; exits 77 without them.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "common/guest_abi.hpp"
#include "tests/vmm/vm/run_vmm.hpp"

namespace {

std::string build_dir() {
  const char* d = std::getenv("FRAKTI_BUILD_DIR");
  return d ? d : ".";
}

void require_guest() {
  struct stat st;
  for (const char* f : {"/guest/vmlinux", "/guest/initrd.img"}) {
    if (::stat((build_dir() + f).c_str(), &st) != 0) {
      std::printf("SKIP: %s%s missing; build it with guest-kernel/build.sh %s/guest\n",
                  build_dir().c_str(), f, build_dir().c_str());
      std::fflush(stdout);
      std::_Exit(77);
    }
  }
}

frakti::test::VmmRun boot(std::vector<std::string> extra) {
  std::vector<std::string> args = {"--kernel", build_dir() + "/guest/vmlinux", "--initrd",
                                   build_dir() + "/guest/initrd.img", "--log-level", "debug"};
  args.insert(args.end(), extra.begin(), extra.end());
  return frakti::test::run_vmm(args, std::chrono::seconds(240));
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) n++;
  return n;
}

}  // namespace

TEST_CASE("with seccomp on, an SMP guest boots, reboots and frakti-vmm exits 2", "[kvm][seccomp]") {
  require_guest();
  // A guest reboot is the clean end every guest kernel supports (exit status 2).
  auto r = boot({"--cpus", "2", "--append", "frakti.reboot=1"});
  INFO("console:\n" << r.console << "\nlog:\n" << r.log);
  // Each thread says when its filter is in: both vCPUs and the event loop.
  CHECK(count(r.log, "vcpu filter installed") == 2);
  CHECK(count(r.log, "event_loop filter installed") == 1);
  REQUIRE(r.console.find(frakti::guest_abi::kReadyLine) != std::string::npos);
  REQUIRE(r.status == 2);
}

TEST_CASE("--no-seccomp boots without installing any filter", "[kvm][seccomp]") {
  require_guest();
  auto r = boot({"--no-seccomp", "--append", "frakti.reboot=1"});
  INFO("console:\n" << r.console << "\nlog:\n" << r.log);
  CHECK(count(r.log, "filter installed") == 0);
  REQUIRE(r.console.find(frakti::guest_abi::kReadyLine) != std::string::npos);
  REQUIRE(r.status == 2);
}
