#include "agent/container/drives.hpp"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

#include "agent/agent_error.hpp"

using namespace frakti::agent;
using namespace frakti::agent::container;
namespace fs = std::filesystem;

namespace {
struct Dir {
  std::string path;
  Dir() {
    char tmpl[] = "/tmp/frakti-drives-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~Dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  void write(const std::string& rel, const std::string& text) {
    fs::create_directories(fs::path(path + rel).parent_path());
    std::ofstream(path + rel) << text;
  }
};
}  // namespace

TEST_CASE("drives: a block device is found by serial, never by name order", "[agent][drives]") {
  Dir sys;
  sys.write("/vda/serial", "frakti-root\n");
  sys.write("/vda/size", "4096\n");
  sys.write("/vdb/serial", "img-busybox");  // no newline: some kernels print none
  sys.write("/vdb/size", "81920\n");
  sys.write("/vdc/serial", "img-empty\n");
  sys.write("/vdc/size", "0\n");      // reserved slot, no media yet
  sys.write("/loop0/size", "100\n");  // no serial file at all
  REQUIRE(find_block_device(sys.path, "/dev", "img-busybox") == "/dev/vdb");
  REQUIRE(find_block_device(sys.path, "/dev", "frakti-root") == "/dev/vda");
  REQUIRE(find_block_device(sys.path, "/dev", "img-empty").empty());
  REQUIRE(find_block_device(sys.path, "/dev", "img-busy").empty());  // no prefix matches
  REQUIRE(find_block_device(sys.path + "/missing", "/dev", "img-busybox").empty());
}

TEST_CASE("drives: attach waits for a hot-swapped slot until its deadline", "[agent][drives]") {
  Dir sys;
  sys.write("/vdc/serial", "img-late\n");
  sys.write("/vdc/size", "0\n");
  BlockDrives drives(sys.path, "/dev", sys.path + "/mnt");
  // Never gets media: NOT_FOUND naming the serial, after the deadline.
  auto start = std::chrono::steady_clock::now();
  try {
    drives.attach("img-late", "erofs", true, "", "", start + std::chrono::milliseconds(150));
    FAIL("attached");
  } catch (const AgentError& e) {
    REQUIRE(e.code() == v1::Error::CODE_NOT_FOUND);
    REQUIRE_THAT(e.what(), Catch::Contains("serial 'img-late'"));
  }
  REQUIRE(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(150));
  // A bad serial is refused before any lookup.
  try {
    drives.attach("../vda", "erofs", true, "", "", start);
    FAIL("attached");
  } catch (const AgentError& e) {
    REQUIRE(e.code() == v1::Error::CODE_INVALID_ARGUMENT);
  }
  // Media arriving while attach waits is noticed (the mount itself fails here: the device
  // node is not real; block_drives_test mounts a real one as root).
  std::thread swap([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    sys.write("/vdc/size", "2048\n");
  });
  try {
    drives.attach("img-late", "erofs", true, "", "",
                  std::chrono::steady_clock::now() + std::chrono::seconds(5));
  } catch (const std::system_error& e) {
    REQUIRE_THAT(e.what(), Catch::Contains("/dev/vdc"));
  }
  swap.join();
}

TEST_CASE("drives: host test mode maps serials to directories", "[agent][drives]") {
  Dir base;
  fs::create_directories(base.path + "/img1/bin");
  base.write("/notadir", "x");
  auto drives = make_drives("dir:" + base.path, "/unused");
  auto d = drives->attach("img1", "erofs", true, "", "", std::chrono::steady_clock::now());
  REQUIRE(d.mount_point == base.path + "/img1");
  try {
    drives->attach("notadir", "erofs", true, "", "", std::chrono::steady_clock::now());
    FAIL("attached a file");
  } catch (const AgentError& e) {
    REQUIRE(e.code() == v1::Error::CODE_NOT_FOUND);
    REQUIRE_THAT(e.what(), Catch::Contains(base.path + "/notadir"));
  }
  REQUIRE_THROWS_AS(make_drives("dir:relative", "/x"), std::invalid_argument);
  REQUIRE_THROWS_AS(make_drives("scsi", "/x"), std::invalid_argument);
  REQUIRE(dynamic_cast<BlockDrives*>(make_drives("sysfs", "/run/frakti/drives").get()) != nullptr);
}
