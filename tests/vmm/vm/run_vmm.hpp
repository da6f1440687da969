#pragma once
// Runs the frakti-vmm binary for end-to-end tests: console and log go to temp files that are
// read back, and the process is killed after a timeout.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace frakti::test {

struct VmmRun {
  int status = -1;  ///< exit status, or -1 when killed (timeout) or signalled
  std::string console;
  std::string log;
  double wall_ms = 0;
};

inline std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Runs FRAKTI_VMM_BINARY with args plus "--console file:<tmp>"; stdin is /dev/null.
inline VmmRun run_vmm(const std::vector<std::string>& args, std::chrono::seconds timeout) {
  char dir_tmpl[] = "/tmp/frakti-vmm-run-XXXXXX";
  if (!mkdtemp(dir_tmpl)) throw std::runtime_error("mkdtemp failed");
  std::string dir = dir_tmpl;
  std::string console = dir + "/console.log", log = dir + "/vmm.log";
  std::vector<std::string> all = {FRAKTI_VMM_BINARY, "--console", "file:" + console};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid;
  auto t0 = std::chrono::steady_clock::now();
  int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw std::runtime_error("posix_spawn frakti-vmm failed");

  VmmRun r;
  int ws = 0;
  for (;;) {
    if (waitpid(pid, &ws, WNOHANG) == pid) break;
    if (std::chrono::steady_clock::now() - t0 > timeout) {
      kill(pid, SIGKILL);
      waitpid(pid, &ws, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  r.wall_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (WIFEXITED(ws)) r.status = WEXITSTATUS(ws);
  r.console = slurp(console);
  r.log = slurp(log);
  ::unlink(console.c_str());
  ::unlink(log.c_str());
  ::rmdir(dir.c_str());
  return r;
}

}  // namespace frakti::test
