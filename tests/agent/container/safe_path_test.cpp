#include "agent/container/safe_path.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <system_error>

using namespace frakti::agent::container;
namespace fs = std::filesystem;

namespace {
struct Root {
  std::string path;
  Root() {
    char tmpl[] = "/tmp/frakti-safepath-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~Root() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  void link(const std::string& target, const std::string& at) {
    fs::create_symlink(target, path + at);
  }
  void dir(const std::string& at) { fs::create_directories(path + at); }
  void file(const std::string& at) { std::ofstream(path + at) << "x"; }
};
}  // namespace

TEST_CASE("safe path: symlinks in the image cannot lead out of the rootfs", "[agent][safe_path]") {
  Root r;
  r.dir("/etc");
  r.dir("/data/real");
  r.file("/etc/hosts");
  r.link("/../../../../etc", "/abs-escape");    // absolute target with ..
  r.link("../../../../../tmp", "/rel-escape");  // relative target climbing out
  r.link("/data/real", "/data/link");           // absolute target inside
  r.link("real", "/data/rel");                  // relative target inside
  r.link("loop2", "/loop1");
  r.link("loop1", "/loop2");
  r.link("/etc/hosts", "/hostsfile");

  const std::pair<std::string, std::string> cases[] = {
      {"/etc", "/etc"},
      {"/abs-escape", "/etc"},
      {"/abs-escape/passwd", "/etc/passwd"},
      {"/rel-escape", "/tmp"},
      {"/rel-escape/x/y", "/tmp/x/y"},
      {"/../../..", ""},
      {"/a/../../b", "/b"},
      {"/data/link/x", "/data/real/x"},
      {"/data/rel", "/data/real"},
      {"//data///./rel/", "/data/real"},
      {"/missing/../etc", "/etc"},
      {"/hostsfile", "/etc/hosts"},
  };
  for (const auto& [in, out] : cases) {
    INFO(in);
    REQUIRE(resolve_in_root(r.path, in) == r.path + out);
  }
  try {
    resolve_in_root(r.path, "/loop1/x");
    FAIL("resolved a symlink loop");
  } catch (const std::system_error& e) {
    REQUIRE(e.code().value() == ELOOP);
  }
  try {
    resolve_in_root(r.path, "/etc/hosts/sub");
    FAIL("walked through a file");
  } catch (const std::system_error& e) {
    REQUIRE(e.code().value() == ENOTDIR);
  }
}

TEST_CASE("safe path: creating mount points follows symlinks inside the rootfs only",
          "[agent][safe_path]") {
  Root r;
  Root outside;
  r.link(outside.path, "/evil");  // an absolute link naming a real host directory
  r.link("../../" + outside.path, "/evil2");
  std::string made = create_in_root(r.path, "/evil/mnt", false);
  REQUIRE(made == r.path + outside.path + "/mnt");
  REQUIRE(fs::is_directory(made));
  REQUIRE_FALSE(fs::exists(outside.path + "/mnt"));
  made = create_in_root(r.path, "/evil2/file", true);
  REQUIRE(fs::is_regular_file(made));
  REQUIRE(made.rfind(r.path + "/", 0) == 0);
  REQUIRE_FALSE(fs::exists(outside.path + "/file"));
}
