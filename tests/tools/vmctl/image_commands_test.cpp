// vmctl pull/images/rmi/load, run as the real binary against a real registry and the
// bundled busybox image.

#include <sys/wait.h>

#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "tests/image/test_registry.hpp"

using namespace frakti::image::testing;
namespace fs = std::filesystem;

namespace {

struct Run {
  int rc;
  std::string out, err;
};

Run vmctl(const fs::path& root, const std::string& args) {
  TempDir io("vmctl-io");
  std::string cmd = fmt::format("{} --root {} {} >{}/out 2>{}/err </dev/null", build_path("bin/vmctl").string(), root.string(), args,
                                io.path().string(), io.path().string());
  int st = std::system(cmd.c_str());
  auto slurp = [](const fs::path& p) {
    std::ifstream f(p);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  };
  return Run{WIFEXITED(st) ? WEXITSTATUS(st) : -1, slurp(io.path() / "out"), slurp(io.path() / "err")};
}

}  // namespace

TEST_CASE("vmctl load imports the bundled busybox and docker archives", "[vmctl][image]") {
  TempDir work;
  fs::path layout = work.path() / "busybox";
  sh(fmt::format("{} {}", source_path("tools/make-busybox-image").string(), layout.string()));
  fs::path root = work.path() / "root";

  Run r = vmctl(root, "load " + layout.string());
  INFO(r.err);
  REQUIRE(r.rc == 0);
  CHECK_THAT(r.out, Catch::Contains("loaded image: docker.io/library/busybox:latest"));
  r = vmctl(root, "images");
  CHECK_THAT(r.out, Catch::Contains("REPOSITORY") && Catch::Contains("docker.io/library/busybox") && Catch::Contains("latest"));
  std::string id = vmctl(root, "images -q --no-trunc busybox").out;
  CHECK(id.rfind("sha256:", 0) == 0);

  sh(fmt::format("skopeo copy --quiet oci:{}:latest docker-archive:{}/bb.tar:example.com/tools/bb:old", layout.string(),
                 work.path().string()));
  r = vmctl(root, fmt::format("load {}/bb.tar", work.path().string()));
  INFO(r.err);
  REQUIRE(r.rc == 0);
  CHECK_THAT(r.out, Catch::Contains("loaded image: example.com/tools/bb:old"));
  // Same content, so the same image ID: now with two names.
  CHECK(vmctl(root, "images -q --no-trunc example.com/tools/bb:old").out == id);

  r = vmctl(root, "rmi busybox");
  CHECK(r.out == "untagged: docker.io/library/busybox:latest\n");
  r = vmctl(root, "rmi example.com/tools/bb:old");
  CHECK_THAT(r.out, Catch::Contains("deleted: " + id.substr(0, id.size() - 1)));
  CHECK(vmctl(root, "images -q").out.empty());
}

TEST_CASE("vmctl pull prints plain progress lines when not on a terminal", "[vmctl][image][registry]") {
  auto& imgs = TestImages::get();
  TempDir work;
  fs::path root = work.path() / "root";
  Run r = vmctl(root, fmt::format("pull {}/test/oci:1", imgs.open->host()));
  INFO(r.err);
  REQUIRE(r.rc == 0);
  CHECK_THAT(r.out, Catch::Contains("resolved sha256:") && Catch::Contains(": done (") &&
                        Catch::Contains("building erofs filesystem image") && Catch::Contains("pulled " + imgs.open->host()));
  CHECK(r.out.find("\r") == std::string::npos);
  r = vmctl(root, fmt::format("pull -q {}/test/oci:1", imgs.open->host()));
  CHECK(r.out.rfind("sha256:", 0) == 0);
}

TEST_CASE("vmctl pull redraws a status line on a terminal", "[vmctl][image][registry]") {
  auto& imgs = TestImages::get();
  TempDir work;
  // script(1) gives vmctl a pseudo-terminal as stdout.
  std::string out = sh(fmt::format("script -qec '{} --root {} pull {}/test/v2s2:1' /dev/null", build_path("bin/vmctl").string(),
                                   (work.path() / "root").string(), imgs.open->host()));
  CHECK_THAT(out, Catch::Contains("\r\033[K") && Catch::Contains(": done (") && Catch::Contains("pulled "));
}

TEST_CASE("vmctl errors say what failed, why, and what to do", "[vmctl][image]") {
  TempDir work;
  fs::path root = work.path() / "root";
  Run r = vmctl(root, "pull Bad:Ref:x");
  CHECK(r.rc == 1);
  CHECK_THAT(r.err, Catch::StartsWith("vmctl: pull Bad:Ref:x: invalid image reference") && Catch::EndsWith(")\n"));
  r = vmctl(root, "pull 127.0.0.1:1/nothing:here");
  CHECK(r.rc == 1);
  CHECK_THAT(r.err, Catch::Contains("vmctl: pull 127.0.0.1:1/nothing:here:") && Catch::Contains("(check that the registry is reachable"));
  r = vmctl(root, "rmi nope");
  CHECK(r.rc == 1);
  CHECK_THAT(r.err, Catch::StartsWith("vmctl: rmi nope: no image \"nope\""));
  r = vmctl(root, "load /does/not/exist");
  CHECK(r.rc == 1);
  CHECK_THAT(r.err, Catch::StartsWith("vmctl: load /does/not/exist: no such file or directory ("));
  CHECK(vmctl(root, "frobnicate").rc == 2);
  CHECK(vmctl(root, "pull").rc == 2);
  CHECK(vmctl(root, "pull --bogus x").rc == 2);
  r = vmctl(root, "--help");
  CHECK_THAT(r.out, Catch::Contains("pull") && Catch::Contains("images") && Catch::Contains("rmi") && Catch::Contains("load"));
}
