// snapshot_host_path: what a VM container's host-path mount sends to the agent.

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>

#include <catch2/catch.hpp>

#include "cri/shim/host_files.hpp"

using frakti::cri::shim::HostFileLimits;
using frakti::cri::shim::snapshot_host_path;
namespace fs = std::filesystem;
namespace v1 = frakti::agent::v1;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/host-files-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
};

// Replays the batches like the agent: path -> (kind, content, link target).
struct Replayed {
  v1::FileEntry::Kind kind;
  std::string data, target;
  uint32_t mode;
};
std::map<std::string, Replayed> replay(const std::vector<v1::PutFilesRequest>& batches) {
  std::map<std::string, Replayed> out;
  for (const auto& b : batches)
    for (const auto& e : b.entries()) {
      auto& r = out[e.path()];
      if (!e.append()) r = {e.kind(), "", e.link_target(), e.mode()};
      r.data += e.data();
    }
  return out;
}

}  // namespace

TEST_CASE("a directory tree arrives whole, symlinks as symlinks", "[shim]") {
  TempDir t;
  fs::create_directories(t.path / "a" / "b");
  std::ofstream(t.path / "a" / "b" / "f") << "deep";
  std::ofstream(t.path / "top") << "top-data";
  fs::permissions(t.path / "top", fs::perms(0640));
  fs::create_symlink("a/b/f", t.path / "rel-link");
  fs::create_symlink("/etc/passwd", t.path / "abs-link");  // copied as a link, never followed
  int s = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string sp = (t.path / "sock").string();
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sp.c_str());
  REQUIRE(::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  ::close(s);

  auto files = replay(snapshot_host_path(t.path));
  REQUIRE(files.count(""));
  CHECK(files[""].kind == v1::FileEntry::KIND_DIRECTORY);
  CHECK(files["a/b/f"].data == "deep");
  CHECK(files["top"].data == "top-data");
  CHECK(files["top"].mode == 0640);
  CHECK(files["rel-link"].kind == v1::FileEntry::KIND_SYMLINK);
  CHECK(files["rel-link"].target == "a/b/f");
  CHECK(files["abs-link"].target == "/etc/passwd");
  CHECK(files["abs-link"].data.empty());
  CHECK(files.count("sock") == 0);  // sockets have nothing to copy
  CHECK(files.size() == 7);         // "", a, a/b, a/b/f, top, rel-link, abs-link
}

TEST_CASE("a single file, reached through a symlink, is the root entry", "[shim]") {
  TempDir t;
  std::ofstream(t.path / "real") << "content";
  fs::create_symlink(t.path / "real", t.path / "link");
  auto files = replay(snapshot_host_path(t.path / "link"));
  REQUIRE(files.size() == 1);
  CHECK(files[""].kind == v1::FileEntry::KIND_FILE);
  CHECK(files[""].data == "content");
}

TEST_CASE("large files go in pieces across requests within the batch size", "[shim]") {
  TempDir t;
  std::string big(3 << 20, 'x');
  big[12345] = 'y';
  std::ofstream(t.path / "big") << big;
  HostFileLimits lim;
  lim.batch_bytes = 1 << 20;
  auto batches = snapshot_host_path(t.path, lim);
  CHECK(batches.size() >= 3);
  for (const auto& b : batches) CHECK(b.ByteSizeLong() < (1u << 20) + 4096);
  CHECK(replay(batches)["big"].data == big);
  std::ofstream(t.path / "empty");
  auto files = replay(snapshot_host_path(t.path, lim));
  CHECK(files.count("empty") == 1);
  CHECK(files["empty"].kind == v1::FileEntry::KIND_FILE);
}

TEST_CASE("limits, missing and odd paths end in errors naming the path", "[shim]") {
  TempDir t;
  for (int i = 0; i < 20; ++i) std::ofstream(t.path / std::to_string(i)) << "0123456789";
  HostFileLimits few;
  few.max_entries = 10;
  CHECK_THROWS_WITH(snapshot_host_path(t.path, few), Catch::Contains("more than 10 entries"));
  HostFileLimits small;
  small.max_bytes = 100;
  CHECK_THROWS_WITH(snapshot_host_path(t.path, small), Catch::Contains(t.path.string()));
  CHECK_THROWS_WITH(snapshot_host_path("/no/such/path"), Catch::Contains("/no/such/path"));
  CHECK_THROWS_WITH(snapshot_host_path("relative/path"), Catch::Contains("not absolute"));
  CHECK_THROWS_WITH(snapshot_host_path("/dev/null"), Catch::Contains("neither a file nor a directory"));
}
