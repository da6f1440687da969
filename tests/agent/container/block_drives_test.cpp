// BlockDrives against a real block device: an erofs image on a loop device, found through a
// sysfs-like directory by its "serial", mounted read-only, read, unmounted. This is the VM's
// rootfs path except that virtio-blk is replaced by a loop device. Needs root.

#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/agent_error.hpp"
#include "agent/container/drives.hpp"
#include "agent/sys/mount.hpp"

using namespace frakti::agent;
using namespace frakti::agent::container;
namespace fs = std::filesystem;

namespace {
std::string run(const std::string& command) {
  std::string out;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[256];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  int status = ::pclose(p);
  INFO(command << " -> " << out);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}
}  // namespace

TEST_CASE("block drives: an erofs image on a block device is found by serial and mounted",
          "[agent][drives][root]") {
  char tmpl[] = "/tmp/frakti-blockdrives-XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  std::string dir = tmpl;
  fs::create_directories(dir + "/tree/etc");
  std::ofstream(dir + "/tree/etc/os-release") << "NAME=frakti-test\n";
  run("mkfs.erofs " + dir + "/image.erofs " + dir + "/tree");
  std::string loop = run("losetup --find --show --read-only " + dir + "/image.erofs");
  std::string name = loop.substr(loop.rfind('/') + 1);
  // Whatever fails below, the mount and the loop device do not outlive the test.
  struct Cleanup {
    std::string dir, loop;
    ~Cleanup() {
      ::umount2((dir + "/drives/img-erofs").c_str(), MNT_DETACH);
      std::system(("losetup -d " + loop + " 2>/dev/null").c_str());
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } cleanup{dir, loop};
  // A sysfs-like tree naming the loop device with a virtio-blk-style serial; the size comes
  // from the real device.
  fs::create_directories(dir + "/sys/" + name);
  std::ofstream(dir + "/sys/" + name + "/serial") << "img-erofs\n";
  std::ofstream(dir + "/sys/" + name + "/size") << run("cat /sys/block/" + name + "/size") << "\n";

  {
    BlockDrives drives(dir + "/sys", "/dev", dir + "/drives");
    auto d = drives.attach("img-erofs", "erofs", true, "", "",
                           std::chrono::steady_clock::now() + std::chrono::seconds(2));
    CHECK(d.device == loop);
    CHECK(d.mount_point == dir + "/drives/img-erofs");
    {
      std::ifstream in(d.mount_point + "/etc/os-release");
      std::stringstream text;
      text << in.rdbuf();
      CHECK(text.str() == "NAME=frakti-test\n");
    }
    // Read-only: the image is shared by every container using it.
    CHECK(::mkdir((d.mount_point + "/new").c_str(), 0755) != 0);
    // A second attach returns the same mount.
    CHECK(drives.attach("img-erofs", "erofs", true, "", "", std::chrono::steady_clock::now())
              .mount_point == d.mount_point);
    drives.detach("img-erofs");
    CHECK_FALSE(sys::is_mount_point(d.mount_point));
    CHECK_THROWS_AS(drives.detach("img-erofs"), AgentError);
  }
}
