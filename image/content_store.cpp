#include "image/content_store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <random>

#include <fmt/format.h>

#include "common/error.hpp"
#include "common/log.hpp"
#include "image/error.hpp"

namespace frakti::image {

namespace fs = std::filesystem;

FileLock::FileLock(const fs::path& path, bool exclusive) {
  fd_ = common::Fd(common::check(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600), "open lock {}", path.string()));
  common::check(common::retry_eintr([&] { return ::flock(fd_.get(), exclusive ? LOCK_EX : LOCK_SH); }), "flock {}",
                path.string());
}

namespace {

std::string temp_name(std::string_view hint) {
  static std::atomic<uint64_t> counter{0};
  std::random_device rd;
  return fmt::format("{}.{}.{}.{:x}.tmp", hint, ::getpid(), counter.fetch_add(1), rd());
}

void fsync_dir(const fs::path& dir) {
  common::Fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (d) ::fsync(d.get());
}

// Writes into a temp file in ingest/, hashing as it goes.
class FileWriter : public BlobWriter {
 public:
  explicit FileWriter(fs::path path) : path_(std::move(path)) {
    fd_ = common::Fd(common::check(::open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644),
                                   "create {}", path_.string()));
  }
  ~FileWriter() override {
    if (!committed_) ::unlink(path_.c_str());
  }
  void write(const char* data, size_t len) override {
    if (limit_ >= 0 && written_ + len > static_cast<uint64_t>(limit_)) {
      throw ImageError(ErrorKind::integrity,
                       fmt::format("blob {}: more data than its declared size of {} bytes", name_, limit_));
    }
    common::write_all(fd_.get(), data, len, path_.c_str());
    hash_.update(data, len);
    written_ += len;
  }
  void reset() override {
    common::check(::ftruncate(fd_.get(), 0), "truncate {}", path_.string());
    common::check(::lseek(fd_.get(), 0, SEEK_SET), "seek {}", path_.string());
    hash_ = Sha256();
    written_ = 0;
  }
  uint64_t written() const override { return written_; }
  Digest finish() {
    common::check(::fsync(fd_.get()), "fsync {}", path_.string());
    return hash_.finish();
  }
  void committed() { committed_ = true; }
  void set_limit(int64_t limit, std::string name) {
    limit_ = limit;
    name_ = std::move(name);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
  common::Fd fd_;
  Sha256 hash_;
  uint64_t written_ = 0;
  int64_t limit_ = -1;
  std::string name_;
  bool committed_ = false;
};

}  // namespace

ContentStore::ContentStore(fs::path root) : root_(std::move(root)) {
  fs::create_directories(root_ / "blobs" / "sha256");
  fs::create_directories(root_ / "ingest");
}

bool ContentStore::has(const Digest& d) const { return fs::exists(path(d)); }

fs::path ContentStore::path(const Digest& d) const { return root_ / "blobs" / "sha256" / std::string(d.hex()); }

uint64_t ContentStore::size(const Digest& d) const {
  std::error_code ec;
  auto n = fs::file_size(path(d), ec);
  if (ec) throw ImageError(ErrorKind::not_found, fmt::format("blob {} is not in the content store", d.str()));
  return n;
}

std::string ContentStore::read(const Digest& d, size_t limit) const {
  common::Fd fd(::open(path(d).c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw ImageError(ErrorKind::not_found, fmt::format("blob {} is not in the content store", d.str()));
  struct stat st{};
  common::check(::fstat(fd.get(), &st), "stat blob {}", d.str());
  if (static_cast<uint64_t>(st.st_size) > limit) {
    throw ImageError(ErrorKind::invalid, fmt::format("blob {} is {} bytes, more than the {} allowed here", d.str(), st.st_size, limit));
  }
  std::string out(static_cast<size_t>(st.st_size), '\0');
  if (!out.empty()) common::read_exact(fd.get(), out.data(), out.size(), path(d).c_str());
  return out;
}

bool ContentStore::ensure(const Digest& d, int64_t expected_size, const std::function<void(BlobWriter&)>& fetch) {
  if (has(d)) return false;
  // One download per blob across threads and processes: whoever gets the lock first fetches,
  // the others find the committed blob when they get it.
  FileLock lock(root_ / "ingest" / fmt::format("{}.lock", d.hex()), true);
  if (has(d)) return false;
  FileWriter w(root_ / "ingest" / temp_name(d.hex()));
  w.set_limit(expected_size, d.str());
  fetch(w);
  if (expected_size >= 0 && w.written() != static_cast<uint64_t>(expected_size)) {
    throw ImageError(ErrorKind::integrity, fmt::format("blob {}: got {} bytes, expected {} (truncated download?)", d.str(),
                                                       w.written(), expected_size));
  }
  Digest got = w.finish();
  if (got != d) {
    throw ImageError(ErrorKind::integrity, fmt::format("blob {}: content has digest {} (corrupted download or "
                                                       "registry content); nothing was stored",
                                                       d.str(), got.str()));
  }
  common::check(::rename(w.path().c_str(), path(d).c_str()), "rename blob {} into the store", d.str());
  w.committed();
  fsync_dir(root_ / "blobs" / "sha256");
  return true;
}

Digest ContentStore::put(std::string_view data) {
  Digest d = sha256_of(data);
  ensure(d, static_cast<int64_t>(data.size()), [&](BlobWriter& w) { w.write(data.data(), data.size()); });
  return d;
}

Digest ContentStore::ingest(const std::function<void(BlobWriter&)>& produce) {
  FileWriter w(root_ / "ingest" / temp_name("import"));
  produce(w);
  Digest d = w.finish();
  FileLock lock(root_ / "ingest" / fmt::format("{}.lock", d.hex()), true);
  if (!has(d)) {
    common::check(::rename(w.path().c_str(), path(d).c_str()), "rename blob {} into the store", d.str());
    w.committed();
    fsync_dir(root_ / "blobs" / "sha256");
  }
  return d;
}

uint64_t ContentStore::garbage_collect(const std::set<Digest>& keep) {
  FileLock gc(root_ / "gc.lock", true);
  uint64_t freed = 0;
  for (auto& e : fs::directory_iterator(root_ / "blobs" / "sha256")) {
    std::string name = e.path().filename().string();
    if (Digest::valid("sha256:" + name) && keep.count(Digest::from_hex(name))) continue;
    std::error_code ec;
    freed += e.file_size(ec);
    fs::remove(e.path(), ec);
    common::log::debug("image", "gc: removed blob sha256:{}", name);
  }
  // No pull is running (we hold the GC lock exclusively), so ingest files are leftovers.
  for (auto& e : fs::directory_iterator(root_ / "ingest")) {
    std::error_code ec;
    fs::remove(e.path(), ec);
  }
  return freed;
}

uint64_t ContentStore::total_size() const {
  uint64_t n = 0;
  for (auto& e : fs::directory_iterator(root_ / "blobs" / "sha256")) {
    std::error_code ec;
    n += e.file_size(ec);
  }
  return n;
}

}  // namespace frakti::image
