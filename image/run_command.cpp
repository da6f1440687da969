#include "image/run_command.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "image/error.hpp"

extern char** environ;

namespace frakti::image {

void run_command(const std::vector<std::string>& argv, const std::string& what) {
  auto out = common::make_pipe();
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out.write.get(), 1);
  posix_spawn_file_actions_adddup2(&fa, out.write.get(), 2);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = ::posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  out.write.reset();
  if (rc != 0) {
    throw ImageError(ErrorKind::invalid, fmt::format("{}: cannot run {}: {} (install it or check PATH)", what, argv[0], std::strerror(rc)));
  }
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = common::retry_eintr([&] { return ::read(out.read.get(), buf, sizeof buf); });
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > 65536) text.erase(0, text.size() - 16384);
  }
  int status = 0;
  common::retry_eintr([&] { return ::waitpid(pid, &status, 0); });
  if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
    if (text.size() > 1000) text = "..." + text.substr(text.size() - 1000);
    while (!text.empty() && text.back() == '\n') text.pop_back();
    throw ImageError(ErrorKind::invalid, fmt::format("{}: {} failed ({}): {}", what, argv[0],
                                                     WIFEXITED(status) ? fmt::format("exit {}", WEXITSTATUS(status))
                                                                       : fmt::format("signal {}", WTERMSIG(status)),
                                                     text));
  }
}

}  // namespace frakti::image
