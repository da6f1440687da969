#include "sandbox/proc_ref.hpp"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include <fmt/format.h>

namespace frakti::sandbox {

namespace {

// The part of /proc/<pid>/stat after the command's closing parenthesis ("" when gone).
std::string stat_tail(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string stat;
  if (!std::getline(in, stat)) return {};
  size_t p = stat.rfind(')');
  return p == std::string::npos || p + 2 >= stat.size() ? std::string{} : stat.substr(p + 2);
}

}  // namespace

ProcRef ProcRef::of(pid_t pid) {
  std::istringstream rest(stat_tail(pid));
  std::string field;
  // Field 3 (state) is the first after the parenthesis; starttime is field 22.
  for (int i = 3; i <= 22 && rest >> field; ++i)
    if (i == 22) return {pid, std::stoull(field)};
  return {pid, 0};
}

ProcRef ProcRef::self() { return of(::getpid()); }

bool ProcRef::alive() const {
  if (pid <= 0) return false;
  std::string tail = stat_tail(pid);
  if (tail.empty() || tail[0] == 'Z') return false;  // a zombie has finished
  ProcRef now = of(pid);
  return now.start != 0 && now.start == start;
}

}  // namespace frakti::sandbox
