// The last steps before execve, shared by a container's init and by exec'd processes
// (see child.hpp). Order matters: limits and the OOM score need privileges, so they come
// before the user switch; capabilities are set after it; with no_new_privileges seccomp comes
// last because the filter may forbid the calls made before it.

#include <grp.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "agent/agent_error.hpp"
#include "agent/container/child.hpp"
#include "agent/container/seccomp.hpp"
#include "agent/sys/capabilities.hpp"
#include "agent/sys/files.hpp"
#include "common/error.hpp"

namespace frakti::agent::container {

namespace {

constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

bool has_key(const std::vector<std::string>& env, std::string_view key) {
  for (const auto& e : env) {
    if (e.size() > key.size() && e.compare(0, key.size(), key) == 0 && e[key.size()] == '=')
      return true;
  }
  return false;
}

std::string env_value(const std::vector<std::string>& env, std::string_view key) {
  for (const auto& e : env) {
    if (e.size() > key.size() && e.compare(0, key.size(), key) == 0 && e[key.size()] == '=')
      return e.substr(key.size() + 1);
  }
  return {};
}

// Finds the program like execvp would, but with the container's PATH (not the agent's).
std::string find_program(const std::string& name, const std::vector<std::string>& env) {
  if (name.find('/') != std::string::npos) return name;
  std::string path = env_value(env, "PATH");
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t end = path.find(':', pos);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(pos, end - pos);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    pos = end + 1;
  }
  throw AgentError(
      v1::Error::CODE_INVALID_ARGUMENT,
      fmt::format("executable '{}' not found in the container's PATH '{}'", name, path), ENOENT);
}

void reset_signals() {
  // The agent's dispositions (ignored SIGPIPE, Asio's SIGCHLD handler) must not leak into
  // the container; exec resets handlers but keeps "ignored" and the blocked mask.
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    ::signal(sig, SIG_DFL);
  }
  sigset_t all;
  sigemptyset(&all);
  ::sigprocmask(SIG_SETMASK, &all, nullptr);
}

// Nothing but stdio crosses exec: the agent's sockets to the host (asio accepts them without
// O_CLOEXEC), its log and whatever the agent inherited. Marked, not closed: the exec-error
// pipe (child.hpp) must stay open until the exec itself.
void close_inherited_fds_on_exec() {
  common::check(::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC),
                "mark the agent's descriptors close-on-exec");
}

}  // namespace

ResolvedUser resolve_container_user(const UserSpec& user) {
  return resolve_user(user, sys::try_read_file("/etc/passwd", 16 << 20),
                      sys::try_read_file("/etc/group", 16 << 20));
}

void apply_process_settings(const ProcessSpec& spec, const ResolvedUser& user,
                            process::ChildStdio& stdio, const std::string& seccomp_json) {
  // A session of its own: signals for the agent's terminal never reach it, and a terminal
  // process gets its pty as controlling terminal.
  common::check(::setsid(), "setsid");
  if (stdio.terminal)
    common::check(::ioctl(stdio.in.get(), TIOCSCTTY, 0), "make the pty the controlling terminal");
  common::check(::dup2(stdio.in.get(), 0), "dup2 stdin");
  common::check(::dup2(stdio.out.get(), 1), "dup2 stdout");
  common::check(::dup2(stdio.err.get(), 2), "dup2 stderr");
  close_inherited_fds_on_exec();
  for (const auto& r : spec.rlimits) {
    rlimit lim{r.soft, r.hard};
    common::check(::setrlimit(r.resource, &lim), "setrlimit {} to {}/{}", r.resource, r.soft,
                  r.hard);
  }
  if (spec.oom_score_adj)
    sys::write_file("/proc/self/oom_score_adj", std::to_string(*spec.oom_score_adj));
  if (spec.umask) ::umask(*spec.umask);

  if (!spec.no_new_privileges && !seccomp_json.empty()) install_seccomp_profile(seccomp_json);
  sys::drop_bounding_set(spec.capabilities);
  // Keep the permitted set across setuid so the requested capabilities can be set after it.
  common::check(::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0), "prctl PR_SET_KEEPCAPS");
  common::check(::setgroups(user.groups.size(), user.groups.data()), "setgroups ({} groups)",
                user.groups.size());
  common::check(::setresgid(user.gid, user.gid, user.gid), "setgid {}", user.gid);
  common::check(::setresuid(user.uid, user.uid, user.uid), "setuid {}", user.uid);
  sys::apply_capabilities(spec.capabilities);
  common::check(::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0), "prctl PR_SET_KEEPCAPS off");
  if (spec.no_new_privileges)
    common::check(::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl PR_SET_NO_NEW_PRIVS");
  if (::chdir(spec.cwd.c_str()) < 0) {
    throw AgentError(v1::Error::CODE_INVALID_ARGUMENT,
                     fmt::format("cannot enter the working directory {} as uid {}: {}", spec.cwd,
                                 user.uid, std::strerror(errno)),
                     errno);
  }
}

std::vector<std::string> process_environment(const ProcessSpec& spec, const ResolvedUser& user) {
  std::vector<std::string> env = spec.env;
  if (!has_key(env, "PATH")) env.push_back(std::string("PATH=") + kDefaultPath);
  if (!has_key(env, "HOME")) env.push_back("HOME=" + user.home);
  if (spec.terminal && !has_key(env, "TERM")) env.push_back("TERM=xterm");
  return env;
}

void exec_process(const ProcessSpec& spec, const ResolvedUser& user,
                  const std::string& seccomp_json) {
  auto env = process_environment(spec, user);
  std::string program = find_program(spec.args[0], env);
  std::vector<char*> argv, envp;
  for (const auto& a : spec.args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  reset_signals();
  // If the agent dies (host test mode) its containers die with it instead of leaking.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (spec.no_new_privileges && !seccomp_json.empty()) install_seccomp_profile(seccomp_json);
  ::execve(program.c_str(), argv.data(), envp.data());
  int err = errno;
  throw AgentError(err == ENOENT || err == EACCES || err == ENOEXEC
                       ? v1::Error::CODE_INVALID_ARGUMENT
                       : v1::Error::CODE_INTERNAL,
                   fmt::format("exec {} in the container: {}", program, std::strerror(err)), err);
}

}  // namespace frakti::agent::container
