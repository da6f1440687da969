// ContentStore: verification before commit, nothing half-stored, one fetch under concurrency,
// garbage collection.

#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <thread>

#include "image/content_store.hpp"
#include "image/error.hpp"
#include "tests/image/test_registry.hpp"

using namespace frakti::image;
using namespace frakti::image::testing;
namespace fs = std::filesystem;

namespace {
size_t files_in(const fs::path& d, const std::string& ext) {
  size_t n = 0;
  for (auto& e : fs::directory_iterator(d)) n += e.path().extension() == ext;
  return n;
}
}  // namespace

TEST_CASE("blobs are verified before they are committed", "[image][content]") {
  TempDir tmp;
  ContentStore cs(tmp.path());
  Digest d = cs.put("hello");
  CHECK(d == sha256_of("hello"));
  CHECK(cs.read(d, 100) == "hello");
  CHECK_THROWS_AS(cs.read(d, 2), ImageError);

  Digest want = sha256_of("payload");
  auto expect_integrity = [&](int64_t size, const std::string& data) {
    try {
      cs.ensure(want, size, [&](BlobWriter& w) { w.write(data.data(), data.size()); });
      FAIL("stored bad data");
    } catch (const ImageError& e) {
      CHECK(e.kind() == ErrorKind::integrity);
      CHECK_THAT(e.what(), Catch::Contains(want.str()));
    }
  };
  expect_integrity(7, "paylaod");   // same size, wrong bytes
  expect_integrity(7, "pay");       // truncated
  expect_integrity(3, "payload");   // longer than declared
  CHECK_FALSE(cs.has(want));
  CHECK(files_in(tmp.path() / "ingest", ".tmp") == 0);

  // A retried download starts over from reset().
  CHECK(cs.ensure(want, 7, [&](BlobWriter& w) {
    w.write("junk", 4);
    w.reset();
    w.write("payload", 7);
  }));
  CHECK_FALSE(cs.ensure(want, 7, [&](BlobWriter&) { FAIL("fetched twice"); }));
}

TEST_CASE("concurrent ensure of one blob fetches it once", "[image][content]") {
  TempDir tmp;
  std::atomic<int> fetches{0};
  std::vector<std::thread> threads;
  std::string data(1 << 20, 'z');
  Digest d = sha256_of(data);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      ContentStore cs(tmp.path());  // separate instances: the lock is a file lock
      cs.ensure(d, static_cast<int64_t>(data.size()), [&](BlobWriter& w) {
        ++fetches;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        w.write(data.data(), data.size());
      });
    });
  }
  for (auto& t : threads) t.join();
  CHECK(fetches.load() == 1);
}

TEST_CASE("garbage collection keeps referenced blobs only", "[image][content]") {
  TempDir tmp;
  ContentStore cs(tmp.path());
  Digest a = cs.put("a"), b = cs.put("bb");
  Digest c = cs.ingest([](BlobWriter& w) { w.write("ccc", 3); });
  CHECK(c == sha256_of("ccc"));
  CHECK(cs.garbage_collect({a}) == 5);
  CHECK(cs.has(a));
  CHECK_FALSE(cs.has(b));
  CHECK_FALSE(cs.has(c));
  CHECK(cs.total_size() == 1);
}
