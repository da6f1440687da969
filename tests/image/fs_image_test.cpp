// The filesystem image of a pulled image mounts (loop, read-only) and holds exactly the
// unpacked tree, for both formats. Needs root (loop mounts) and docker-registry.

#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <fmt/format.h>

#include "image/image_service.hpp"
#include "tests/image/test_registry.hpp"

using namespace frakti::image;
using namespace frakti::image::testing;
namespace fs = std::filesystem;

namespace {

// path -> "type mode uid:gid size content-digest|link-target|rdev"
std::map<std::string, std::string> describe_tree(const fs::path& root) {
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    // lexically: fs::relative would resolve symlinks and describe their targets instead.
    std::string rel = it->path().lexically_relative(root).string();
    if (rel == "lost+found") {
      it.disable_recursion_pending();
      continue;  // ext4's own directory
    }
    struct stat st{};
    REQUIRE(::lstat(it->path().c_str(), &st) == 0);
    std::string extra;
    if (S_ISREG(st.st_mode)) {
      std::ifstream f(it->path(), std::ios::binary);
      std::stringstream ss;
      ss << f.rdbuf();
      extra = sha256_of(ss.str()).str();
    } else if (S_ISLNK(st.st_mode)) {
      extra = fs::read_symlink(it->path()).string();
    } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      extra = fmt::format("{}:{}", major(st.st_rdev), minor(st.st_rdev));
    }
    out[rel] = fmt::format("{:o} {}:{} {} {}", st.st_mode, st.st_uid, st.st_gid, S_ISDIR(st.st_mode) ? 0 : st.st_size, extra);
  }
  return out;
}

struct LoopMount {
  fs::path dir;
  LoopMount(const fs::path& image, const fs::path& at, const char* type) : dir(at) {
    fs::create_directories(at);
    sh(fmt::format("mount -t {} -o loop,ro {} {}", type, image.string(), at.string()));
  }
  ~LoopMount() { ::umount2(dir.c_str(), MNT_DETACH); }
};

}  // namespace

TEST_CASE("the filesystem image mounts read-only and matches the unpacked tree", "[image][fsimage][root]") {
  auto& imgs = TestImages::get();
  for (FsFormat format : {FsFormat::erofs, FsFormat::ext4}) {
    SECTION(fs_format_name(format)) {
      TempDir root;
      ServiceOptions o;
      o.root = root.path();
      o.format = format;
      ImageService svc(o);
      ImageRecord img = svc.pull(imgs.open->host() + "/test/oci:1", {}).image;
      fs::path file = svc.fs_image(img.id.str());
      CHECK(file == svc.fs_builder().path(img.id));
      REQUIRE(fs::exists(file));

      fs::path tree = root.path() / "tree";
      fs::create_directories(tree);
      svc.fs_builder().unpack(img, tree);
      auto want = describe_tree(tree);
      CHECK(want.count("data/hello"));
      CHECK(want.count("bin/busybox"));
      CHECK_FALSE(want.count("bin/vi"));  // removed by the second layer's whiteout

      LoopMount m(file, root.path() / "mnt", fs_format_name(format));
      auto got = describe_tree(m.dir);
      CHECK(got.size() == want.size());
      for (auto& [path, desc] : want) {
        INFO(path);
        CHECK(got[path] == desc);
      }
      // Read-only: writing must fail.
      std::ofstream probe(m.dir / "probe");
      CHECK_FALSE(probe.good());
    }
  }
}
