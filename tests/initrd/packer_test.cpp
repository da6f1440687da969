// Tests initrd/build.sh, the packer every guest initrd goes through.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

std::string packer() {
  const char* src = std::getenv("FRAKTI_SOURCE_DIR");
  REQUIRE(src != nullptr);
  return std::string(src) + "/initrd/build.sh";
}

// Runs a shell command; returns its exit status and stdout.
std::pair<int, std::string> run(const std::string& command) {
  FILE* p = popen(command.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const fs::path& path, const std::string& data, fs::perms perms) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << data;
  fs::permissions(path, perms);
}

// A scratch directory with an init, a file tree and a symlink to pack.
struct Scratch {
  fs::path dir;
  Scratch() {
    char tmpl[] = "/tmp/frakti-initrd-test.XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    write_file(dir / "init", "#!/bin/sh\necho init\n", fs::perms::owner_all);
    write_file(dir / "tree/b.txt", "bee\n", fs::perms::owner_read | fs::perms::owner_write);
    write_file(dir / "tree/sub/tool", "tool", fs::perms::owner_all | fs::perms::group_all);
    fs::create_symlink("b.txt", dir / "tree/link");
    write_file(dir / "extra.conf", "k=v\n", fs::perms::owner_read);
  }
  ~Scratch() { fs::remove_all(dir); }
  // The packer command line for this scratch tree, writing `out`.
  std::string command(const std::string& out, const std::string& compress = "gzip") const {
    return packer() + " --init " + (dir / "init").string() + " --out " + (dir / out).string() +
           " --compress " + compress + " --add " + (dir / "tree").string() + ":/opt/tree" +
           " --add " + (dir / "extra.conf").string() + ":etc/extra.conf:0600 --dir var/run";
  }
};

const std::vector<std::string> kExpectedEntries = {
    "dev",
    "dev/console",
    "etc",
    "etc/extra.conf",
    "init",
    "opt",
    "opt/tree",
    "opt/tree/b.txt",
    "opt/tree/link",
    "opt/tree/sub",
    "opt/tree/sub/tool",
    "proc",
    "sys",
    "var",
    "var/run",
};

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// One newc member, parsed from an uncompressed archive.
struct Member {
  unsigned ino, mode, uid, gid, nlink, mtime, rdevmajor, rdevminor;
  std::string data;
};

std::map<std::string, Member> parse_newc(const std::string& archive) {
  std::map<std::string, Member> members;
  size_t pos = 0;
  auto field = [&](size_t i) {
    return static_cast<unsigned>(std::stoul(archive.substr(pos + 6 + i * 8, 8), nullptr, 16));
  };
  auto align = [](size_t x) { return (x + 3) & ~size_t{3}; };
  for (;;) {
    REQUIRE(pos + 110 <= archive.size());
    REQUIRE(archive.compare(pos, 6, "070701") == 0);
    Member m{field(0), field(1), field(2), field(3), field(4), field(5), field(9), field(10), {}};
    size_t size = field(6), namesize = field(11);
    REQUIRE(namesize >= 1);
    std::string name = archive.substr(pos + 110, namesize - 1);
    REQUIRE(archive[pos + 110 + namesize - 1] == '\0');
    size_t data = align(pos + 110 + namesize);
    if (name == "TRAILER!!!") {
      CHECK(align(data) == archive.size());
      return members;
    }
    REQUIRE(data + size <= archive.size());
    m.data = archive.substr(data, size);
    members[name] = m;
    pos = align(data + size);
  }
}

}  // namespace

TEST_CASE("packer output is byte-for-byte reproducible", "[initrd]") {
  Scratch s;
  REQUIRE(run(s.command("one.img")).first == 0);
  // Different host mtimes and a second run must not change a byte.
  fs::last_write_time(s.dir / "tree/b.txt",
                      fs::file_time_type::clock::now() - std::chrono::hours(5));
  sleep(1);
  REQUIRE(run(s.command("two.img")).first == 0);
  std::string one = slurp(s.dir / "one.img"), two = slurp(s.dir / "two.img");
  REQUIRE(!one.empty());
  CHECK(one == two);
  // gzip -n: no file name and a zero time stamp in the gzip header.
  REQUIRE(one.size() > 10);
  CHECK(one.substr(0, 2) == "\x1f\x8b");
  CHECK(one.substr(4, 4) == std::string(4, '\0'));
}

TEST_CASE("packer archives list exactly the expected entries, sorted", "[initrd]") {
  Scratch s;
  for (std::string compress : {"gzip", "zstd"}) {
    CAPTURE(compress);
    REQUIRE(run(s.command("out.img", compress)).first == 0);
    std::string decompress = compress == "gzip" ? "gzip -dc " : "zstd -dc ";
    auto [rc, listing] = run(decompress + (s.dir / "out.img").string() + " | cpio -it --quiet");
    REQUIRE(rc == 0);
    CHECK(lines(listing) == kExpectedEntries);
  }
}

TEST_CASE("packer members carry normalised metadata and exact contents", "[initrd]") {
  Scratch s;
  REQUIRE(run("SOURCE_DATE_EPOCH=1234567 " + s.command("raw.cpio", "none")).first == 0);
  auto members = parse_newc(slurp(s.dir / "raw.cpio"));
  REQUIRE(members.size() == kExpectedEntries.size());
  unsigned ino = 0;
  for (const auto& name : kExpectedEntries) {
    CAPTURE(name);
    REQUIRE(members.count(name) == 1);
    const Member& m = members[name];
    CHECK(m.ino == ++ino);  // inode numbers follow archive order
    CHECK(m.uid == 0);
    CHECK(m.gid == 0);
    CHECK(m.mtime == 1234567);
  }
  CHECK(members["init"].mode == (S_IFREG | 0755));
  CHECK(members["init"].data == "#!/bin/sh\necho init\n");
  CHECK(members["opt/tree/b.txt"].mode == (S_IFREG | 0644));
  CHECK(members["opt/tree/b.txt"].data == "bee\n");
  CHECK(members["opt/tree/sub/tool"].mode == (S_IFREG | 0755));  // group bits dropped
  CHECK(members["etc/extra.conf"].mode == (S_IFREG | 0600));     // explicit MODE wins
  CHECK(members["opt/tree/link"].mode == (S_IFLNK | 0777));
  CHECK(members["opt/tree/link"].data == "b.txt");
  CHECK(members["var/run"].mode == (S_IFDIR | 0755));
  CHECK(members["dev/console"].mode == (S_IFCHR | 0600));
  CHECK(members["dev/console"].rdevmajor == 5);
  CHECK(members["dev/console"].rdevminor == 1);
}

TEST_CASE("packer rejects bad arguments and leaves no output", "[initrd]") {
  Scratch s;
  const std::string init = (s.dir / "init").string(), out = (s.dir / "bad.img").string();
  const std::string base = packer() + " --init " + init + " --out " + out;
  const std::string tree = (s.dir / "tree").string();
  const std::vector<std::string> bad = {
      packer() + " --out " + out,    // no --init
      packer() + " --init " + init,  // no --out
      packer() + " --init " + (s.dir / "missing").string() + " --out " + out,
      base + " --bogus",
      base + " --compress lzma",
      base + " --add " + tree,                     // no DEST
      base + " --add " + tree + ":",               // empty DEST
      base + " --add " + tree + ":/",              // root itself
      base + " --add " + tree + ":opt/../../etc",  // escapes the root
      base + " --add " + tree + ":a/./b",
      base + " --add " + tree + ":a//b",
      base + " --add " + tree + ":x:999",  // not octal
      base + " --add " + tree + ":x:0755:extra",
      base + " --add " + (s.dir / "missing").string() + ":x",
      base + " --add /dev/null:x",               // not a regular file
      base + " --add " + init + ":init",         // clashes with /init
      base + " --add " + init + ":dev/console",  // clashes with the node
      base + " --add " + init + ":init/x",       // file used as a directory
      "SOURCE_DATE_EPOCH=yesterday " + base,
  };
  for (const auto& command : bad) {
    CAPTURE(command);
    CHECK(run(command + " 2>/dev/null").first != 0);
    CHECK_FALSE(fs::exists(out));
  }
  // No temp files are left next to the output either.
  for (const auto& entry : fs::directory_iterator(s.dir)) {
    CHECK(entry.path().filename().string().find("bad.img") == std::string::npos);
  }
}
