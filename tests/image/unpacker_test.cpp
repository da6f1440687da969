// Unpacker: layer semantics (types, metadata, whiteouts, compression, diff_ids) and a table of
// hostile tarballs that must stay inside the root and be reported.

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "image/error.hpp"
#include "image/unpacker.hpp"
#include "tests/image/test_registry.hpp"

using namespace frakti::image;
using namespace frakti::image::testing;
namespace fs = std::filesystem;

namespace {

// Builds a tar in memory with libarchive's writer, names taken verbatim.
class TarBuilder {
 public:
  TarBuilder() : a_(archive_write_new()) {
    archive_write_set_format_pax_restricted(a_);
    archive_write_set_bytes_in_last_block(a_, 1);
    archive_write_open(a_, this, nullptr, &TarBuilder::on_write, nullptr);
  }
  ~TarBuilder() {
    if (a_) archive_write_free(a_);
  }
  TarBuilder& file(const std::string& name, const std::string& data, int mode = 0644, int uid = 0, int gid = 0,
                   const std::string& xattr = {}) {
    auto* e = entry(name, AE_IFREG, mode, uid, gid);
    archive_entry_set_size(e, static_cast<la_int64_t>(data.size()));
    if (!xattr.empty()) archive_entry_xattr_add_entry(e, xattr.c_str(), "v1", 2);
    archive_write_header(a_, e);
    archive_write_data(a_, data.data(), data.size());
    archive_entry_free(e);
    return *this;
  }
  TarBuilder& dir(const std::string& name, int mode = 0755) { return simple(name, AE_IFDIR, mode); }
  TarBuilder& symlink(const std::string& name, const std::string& target) {
    auto* e = entry(name, AE_IFLNK, 0777, 0, 0);
    archive_entry_set_symlink(e, target.c_str());
    archive_write_header(a_, e);
    archive_entry_free(e);
    return *this;
  }
  TarBuilder& hardlink(const std::string& name, const std::string& target) {
    auto* e = entry(name, AE_IFREG, 0644, 0, 0);
    archive_entry_set_hardlink(e, target.c_str());
    archive_entry_set_size(e, 0);
    archive_write_header(a_, e);
    archive_entry_free(e);
    return *this;
  }
  TarBuilder& node(const std::string& name, unsigned type, int major, int minor) {
    auto* e = entry(name, type, 0600, 0, 0);
    archive_entry_set_rdev(e, makedev(major, minor));
    archive_write_header(a_, e);
    archive_entry_free(e);
    return *this;
  }
  std::string finish() {
    archive_write_close(a_);
    archive_write_free(a_);
    a_ = nullptr;
    return out_;
  }

 private:
  TarBuilder& simple(const std::string& name, unsigned type, int mode) {
    auto* e = entry(name, type, mode, 0, 0);
    archive_write_header(a_, e);
    archive_entry_free(e);
    return *this;
  }
  archive_entry* entry(const std::string& name, unsigned type, int mode, int uid, int gid) {
    archive_entry* e = archive_entry_new();
    archive_entry_copy_pathname(e, name.c_str());
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, static_cast<mode_t>(mode));
    archive_entry_set_uid(e, uid);
    archive_entry_set_gid(e, gid);
    archive_entry_set_mtime(e, 1700000000, 0);
    return e;
  }
  static la_ssize_t on_write(archive*, void* self, const void* buf, size_t n) {
    static_cast<TarBuilder*>(self)->out_.append(static_cast<const char*>(buf), n);
    return static_cast<la_ssize_t>(n);
  }
  archive* a_;
  std::string out_;
};

struct Sandbox {
  TempDir tmp;
  fs::path root = tmp.path() / "root";
  fs::path outside = tmp.path() / "outside";
  Sandbox() {
    fs::create_directories(root);
    fs::create_directories(outside);
    std::ofstream(outside / "victim") << "original";
  }
  fs::path write_layer(const std::string& data, const std::string& name = "layer.tar") {
    fs::path p = tmp.path() / name;
    std::ofstream(p, std::ios::binary) << data;
    return p;
  }
  bool outside_untouched() const {
    std::ifstream f(outside / "victim");
    std::stringstream ss;
    ss << f.rdbuf();
    size_t n = 0;
    for ([[maybe_unused]] auto& e : fs::directory_iterator(outside)) ++n;
    return ss.str() == "original" && n == 1 && fs::hard_link_count(outside / "victim") == 1;
  }
};

std::string slurp(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("unpack recreates files, links, modes, owners, xattrs and devices", "[image][unpack]") {
  Sandbox s;
  bool root = ::geteuid() == 0;
  std::string tar = TarBuilder()
                        .dir("etc", 0755)
                        .file("etc/conf", "hello", 0640, 1234, 5678, "user.frakti")
                        .file("bin/tool", "#!/bin/sh\n", 04755)
                        .symlink("bin/sh", "/bin/tool")
                        .hardlink("bin/tool2", "bin/tool")
                        .dir("ro", 0555)
                        .file("ro/inside", "x")
                        .node("dev/null", AE_IFCHR, 1, 3)
                        .node("run/fifo", AE_IFIFO, 0, 0)
                        .finish();
  Unpacker u(s.root);
  Digest diff = u.apply(s.write_layer(tar), sha256_of(tar), "test");
  u.finish();
  CHECK(diff == sha256_of(tar));
  CHECK(slurp(s.root / "etc/conf") == "hello");
  struct stat st{};
  REQUIRE(::lstat((s.root / "etc/conf").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0640);
  CHECK(st.st_mtime == 1700000000);
  if (root) {
    CHECK(st.st_uid == 1234);
    CHECK(st.st_gid == 5678);
  }
  char xv[8] = {};
  if (::getxattr((s.root / "etc/conf").c_str(), "user.frakti", xv, sizeof xv) == 2) CHECK(std::string(xv, 2) == "v1");
  REQUIRE(::lstat((s.root / "bin/tool").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 04755);
  CHECK(st.st_nlink == 2);
  CHECK(fs::read_symlink(s.root / "bin/sh") == "/bin/tool");
  REQUIRE(::lstat((s.root / "ro").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0555);
  CHECK(slurp(s.root / "ro/inside") == "x");
  CHECK(fs::is_fifo(s.root / "run/fifo"));
  if (root) {
    REQUIRE(::lstat((s.root / "dev/null").c_str(), &st) == 0);
    CHECK(S_ISCHR(st.st_mode));
    CHECK(st.st_rdev == makedev(1, 3));
  } else {
    CHECK(u.report().skipped == 1);
  }
  CHECK(u.report().entries == 9);
}

TEST_CASE("whiteouts and opaque directories remove lower-layer content", "[image][unpack]") {
  Sandbox s;
  std::string l1 = TarBuilder().file("a/x", "1").file("a/y", "2").file("b/z", "3").file("c/old", "4").file("d", "5").finish();
  std::string l2 = TarBuilder()
                       .file("a/.wh.x", "")
                       .file(".wh.b", "")
                       .dir("c")
                       .file("c/new", "6")
                       .file("c/.wh..wh..opq", "")
                       .dir("d")  // a directory replaces a file
                       .finish();
  Unpacker u(s.root);
  u.apply(s.write_layer(l1, "l1.tar"), std::nullopt, "l1");
  u.apply(s.write_layer(l2, "l2.tar"), std::nullopt, "l2");
  u.finish();
  CHECK_FALSE(fs::exists(s.root / "a/x"));
  CHECK(fs::exists(s.root / "a/y"));
  CHECK_FALSE(fs::exists(s.root / "b"));
  CHECK_FALSE(fs::exists(s.root / "c/old"));
  CHECK(slurp(s.root / "c/new") == "6");
  CHECK(fs::is_directory(s.root / "d"));
  CHECK_FALSE(fs::exists(s.root / "a/.wh.x"));
  CHECK(u.report().whiteouts == 3);
}

TEST_CASE("gzip, zstd and plain layers unpack and diff_ids are checked", "[image][unpack]") {
  Sandbox s;
  std::string tar = TarBuilder().file("hello", "world").finish();
  fs::path plain = s.write_layer(tar, "l.tar");
  sh(fmt::format("gzip -kn {0} && zstd -q {0} -o {0}.zst", plain.string()));
  for (const char* name : {"l.tar", "l.tar.gz", "l.tar.zst"}) {
    fs::path r = s.tmp.path() / (std::string("root-") + name);
    fs::create_directories(r);
    Unpacker u(r);
    CHECK(u.apply(s.tmp.path() / name, sha256_of(tar), name) == sha256_of(tar));
    CHECK(slurp(r / "hello") == "world");
  }
  Unpacker u(s.root);
  try {
    u.apply(s.tmp.path() / "l.tar.gz", sha256_of("other"), "sha256:layer");
    FAIL("diff_id mismatch not detected");
  } catch (const ImageError& e) {
    CHECK(e.kind() == ErrorKind::integrity);
    CHECK_THAT(e.what(), Catch::Contains("diff_id") && Catch::Contains("sha256:layer"));
  }
}

namespace {

// A raw ustar header block with a GNU long-name entry claiming an enormous size.
std::string huge_longlink_tar() {
  std::string h(512, '\0');
  auto put = [&](size_t off, const std::string& v) { std::copy(v.begin(), v.end(), h.begin() + static_cast<long>(off)); };
  put(0, "././@LongLink");
  put(100, "0000644");
  put(108, "0000000");
  put(116, "0000000");
  put(124, "77777777777");  // 8 GiB of "name"
  put(136, "00000000000");
  h[156] = 'L';
  put(257, "ustar  ");
  std::fill(h.begin() + 148, h.begin() + 156, ' ');
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  put(148, fmt::format("{:06o}", sum));
  h[154] = '\0';
  return h + std::string(4096, 'A');
}

}  // namespace

TEST_CASE("hostile layers stay inside the root and are reported", "[image][unpack][hostile]") {
  struct Case {
    const char* what;
    std::function<std::string(const Sandbox&)> tar;
    bool must_fail;             ///< the layer is refused (ImageError)
    const char* report_contains;  ///< otherwise: a warning mentioning this
  };
  std::vector<Case> cases = {
      {"dot-dot file", [](const Sandbox&) { return TarBuilder().file("../outside/victim", "pwned").finish(); }, true, ""},
      {"nested dot-dot", [](const Sandbox&) { return TarBuilder().file("a/b/../../../outside/new", "x").finish(); }, true, ""},
      {"absolute name",
       [](const Sandbox& s) { return TarBuilder().file((s.outside / "victim").string(), "pwned").finish(); }, false,
       "absolute name"},
      {"symlink to / then write through it",
       [](const Sandbox&) { return TarBuilder().symlink("esc", "/").file("esc/victim", "pwned").finish(); }, false,
       "symlink leaving the root"},
      {"symlink to the outside directory then write through it",
       [](const Sandbox& s) { return TarBuilder().symlink("esc", s.outside.string()).file("esc/victim", "pwned").finish(); },
       true, ""},
      {"relative symlink climbing out",
       [](const Sandbox&) {
         return TarBuilder().dir("d").symlink("d/up", "../../../../../..").file("d/up/outside/victim", "pwned").finish();
       },
       false, "symlink leaving the root"},
      {"file replacing a symlink to outside",
       [](const Sandbox& s) {
         return TarBuilder().symlink("f", (s.outside / "victim").string()).file("f", "pwned").finish();
       },
       false, ""},
      {"hard link to outside", [](const Sandbox&) { return TarBuilder().hardlink("h", "../outside/victim").finish(); }, true, ""},
      {"hard link through a symlink",
       [](const Sandbox& s) {
         return TarBuilder().symlink("l", s.outside.string()).hardlink("h", "l/victim").finish();
       },
       true, ""},
      {"whiteout of the parent", [](const Sandbox&) { return TarBuilder().file("a/.wh...", "").finish(); }, true, ""},
      {"whiteout through a symlink",
       [](const Sandbox& s) { return TarBuilder().symlink("w", s.outside.string()).file("w/.wh.victim", "").finish(); }, true,
       ""},
      {"huge pax path", [](const Sandbox&) { return TarBuilder().file(std::string(70000, 'a'), "x").finish(); }, true, ""},
      {"huge GNU long-name header", [](const Sandbox&) { return huge_longlink_tar(); }, true, ""},
      {"garbage", [](const Sandbox&) { return std::string(2048, '\x7f'); }, true, ""},
  };
  for (auto& c : cases) {
    SECTION(c.what) {
      Sandbox s;
      Unpacker u(s.root);
      bool failed = false;
      try {
        u.apply(s.write_layer(c.tar(s)), std::nullopt, "hostile");
        u.finish();
      } catch (const ImageError& e) {
        failed = true;
        INFO(e.what());
        CHECK((e.kind() == ErrorKind::hostile || e.kind() == ErrorKind::invalid));
      }
      CHECK(failed == c.must_fail);
      CHECK(s.outside_untouched());
      if (!c.must_fail && *c.report_contains) {
        bool seen = false;
        for (auto& w : u.report().warnings) seen |= w.find(c.report_contains) != std::string::npos;
        CHECK(seen);
      }
    }
  }
}
