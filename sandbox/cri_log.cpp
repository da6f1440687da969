#include "sandbox/cri_log.hpp"

#include <fcntl.h>
#include <time.h>

#include <fstream>

#include <fmt/format.h>

#include "common/error.hpp"

namespace frakti::sandbox {

std::string rfc3339_nano_now() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  ::gmtime_r(&ts.tv_sec, &t);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday, t.tm_hour,
                     t.tm_min, t.tm_sec, ts.tv_nsec);
}

CriLogWriter::CriLogWriter(const std::filesystem::path& path) : path_(path) { reopen(); }

void CriLogWriter::reopen() {
  common::Fd fd(::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
  if (!fd) common::throw_errno("cannot open the container log " + path_.string());
  fd_ = std::move(fd);
}

void CriLogWriter::emit(LogStream stream, std::string_view content, bool partial) {
  std::string rec = fmt::format("{} {} {} {}\n", rfc3339_nano_now(), stream == LogStream::stdout_ ? "stdout" : "stderr",
                                partial ? 'P' : 'F', content);
  common::write_all(fd_.get(), rec.data(), rec.size(), "container log");
}

void CriLogWriter::write(LogStream stream, std::string_view data) {
  std::string& pend = pending_[static_cast<int>(stream)];
  pend.append(data);
  size_t start = 0;
  for (;;) {
    size_t nl = pend.find('\n', start);
    if (nl == std::string::npos) break;
    std::string_view line(pend.data() + start, nl - start);
    while (line.size() > kMaxLine) {
      emit(stream, line.substr(0, kMaxLine), true);
      line.remove_prefix(kMaxLine);
    }
    emit(stream, line, false);
    start = nl + 1;
  }
  pend.erase(0, start);
  while (pend.size() > kMaxLine) {
    emit(stream, std::string_view(pend).substr(0, kMaxLine), true);
    pend.erase(0, kMaxLine);
  }
}

void CriLogWriter::finish(LogStream stream) {
  std::string& pend = pending_[static_cast<int>(stream)];
  if (!pend.empty()) emit(stream, pend, true);
  pend.clear();
}

std::vector<LogRecord> read_cri_log(const std::filesystem::path& path) {
  std::vector<LogRecord> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    size_t a = line.find(' ');
    if (a == std::string::npos) continue;
    size_t b = line.find(' ', a + 1);
    if (b == std::string::npos || b + 2 > line.size()) continue;
    std::string stream = line.substr(a + 1, b - a - 1);
    char tag = line[b + 1];
    if ((stream != "stdout" && stream != "stderr") || (tag != 'P' && tag != 'F')) continue;
    if (b + 2 < line.size() && line[b + 2] != ' ') continue;
    LogRecord r{line.substr(0, a), stream == "stdout" ? LogStream::stdout_ : LogStream::stderr_, tag == 'P',
                b + 3 <= line.size() ? line.substr(b + 3) : std::string()};
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace frakti::sandbox
