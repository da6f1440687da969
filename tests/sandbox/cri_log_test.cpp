// CRI log format: complete lines are F records, long lines and unterminated tails P records.

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <regex>

#include "sandbox/cri_log.hpp"

using namespace frakti::sandbox;
namespace fs = std::filesystem;

namespace {

struct TempFile {
  fs::path path = fs::temp_directory_path() / ("cri-log-test-" + std::to_string(::getpid()) + ".log");
  ~TempFile() { fs::remove(path); }
};

}  // namespace

TEST_CASE("cri log: lines split, streams kept apart, partials marked", "[sandbox]") {
  TempFile f;
  {
    CriLogWriter w(f.path);
    w.write(LogStream::stdout_, "hel");
    w.write(LogStream::stderr_, "oops\n");
    w.write(LogStream::stdout_, "lo\nwor");
    w.write(LogStream::stdout_, "ld\n\n");
    w.write(LogStream::stdout_, std::string(CriLogWriter::kMaxLine + 10, 'x') + "\n");
    w.write(LogStream::stderr_, "tail without newline");
    w.finish(LogStream::stderr_);
    w.finish(LogStream::stdout_);  // nothing pending: no record
  }
  auto recs = read_cri_log(f.path);
  REQUIRE(recs.size() == 7);
  CHECK((recs[0].stream == LogStream::stderr_ && recs[0].content == "oops" && !recs[0].partial));
  CHECK((recs[1].content == "hello" && !recs[1].partial));
  CHECK((recs[2].content == "world" && !recs[2].partial));
  CHECK((recs[3].content.empty() && !recs[3].partial));
  CHECK((recs[4].partial && recs[4].content.size() == CriLogWriter::kMaxLine));
  CHECK((!recs[5].partial && recs[5].content == std::string(10, 'x')));
  CHECK((recs[6].stream == LogStream::stderr_ && recs[6].partial && recs[6].content == "tail without newline"));

  // The on-disk shape kubelet parses.
  std::ifstream in(f.path);
  std::string first;
  std::getline(in, first);
  CHECK(std::regex_match(first, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z stderr F oops)")));
}

TEST_CASE("cri log reader skips malformed lines", "[sandbox]") {
  TempFile f;
  std::ofstream(f.path) << "garbage\n2026-01-01T00:00:00.000000000Z stdout F ok\nx y z\n"
                           "2026-01-01T00:00:00.000000000Z stdmid F no\n2026-01-01T00:00:00.000000000Z stderr P\n";
  auto recs = read_cri_log(f.path);
  REQUIRE(recs.size() == 2);
  CHECK(recs[0].content == "ok");
  CHECK((recs[1].partial && recs[1].content.empty()));
}
