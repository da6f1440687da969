#include "cri/server/runc_host.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/loop.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <optional>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "common/log.hpp"
#include "cri/server/errors.hpp"

namespace frakti::cri {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// fork + exec with the given fds as 0, 1, 2 (and keep_fd as 3 when >= 0); nothing else is
// inherited and no signal stays blocked.
// cwd: the child's working directory ("" = ours). conmon writes its "oom" marker file into
// its working directory, so it runs in the container's bundle.
pid_t spawn(const std::vector<std::string>& argv, int in, int out, int err, int keep_fd = -1,
            const std::vector<std::string>& extra_env = {}, const std::string& cwd = "") {
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_store;
  for (char** e = environ; *e; ++e) env_store.emplace_back(*e);
  env_store.insert(env_store.end(), extra_env.begin(), extra_env.end());
  std::vector<char*> env;
  for (auto& e : env_store) env.push_back(e.data());
  env.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) common::throw_errno("fork for " + argv[0]);
  if (pid == 0) {
    // Only async-signal-safe calls from here on.
    int fds[4] = {in, out, err, keep_fd};
    int n = keep_fd >= 0 ? 4 : 3;
    for (int i = 0; i < n; ++i) fds[i] = ::fcntl(fds[i], F_DUPFD_CLOEXEC, 10);
    for (int i = 0; i < n; ++i) ::dup2(fds[i], i);
    ::syscall(SYS_close_range, static_cast<unsigned>(n), ~0u, 0u);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (!cwd.empty() && ::chdir(cwd.c_str()) < 0) ::_exit(127);
    ::execve(args[0], args.data(), env.data());
    ::_exit(127);
  }
  return pid;
}

int decode(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

ProcessResult run_process(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                          const std::function<void()>& on_timeout, size_t max_output) {
  auto out = common::make_pipe(O_NONBLOCK), err = common::make_pipe(O_NONBLOCK);
  common::Fd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  pid_t pid = spawn(argv, null.get(), out.write.get(), err.write.get());
  out.write.reset();
  err.write.reset();
  ProcessResult r;
  auto deadline = Clock::now() + timeout;
  std::optional<Clock::time_point> drain_until;
  bool out_open = true, err_open = true, exited = false;
  int status = 0;
  while (out_open || err_open) {
    auto now = Clock::now();
    if (!exited && common::retry_eintr([&] { return ::waitpid(pid, &status, WNOHANG); }) == pid) {
      exited = true;
      // What it left running (`cmd &`) may hold the pipes open: read what is there, briefly.
      drain_until = now + 500ms;
    }
    if (!exited && !r.timed_out && timeout > 0ms && now >= deadline) {
      r.timed_out = true;
      if (on_timeout) on_timeout();
      ::kill(pid, SIGKILL);
    }
    if (drain_until && now >= *drain_until) break;
    pollfd p[2] = {{out_open ? out.read.get() : -1, POLLIN, 0},
                   {err_open ? err.read.get() : -1, POLLIN, 0}};
    if (::poll(p, 2, 100) < 0 && errno != EINTR)  // 100 ms: also watches the program's end
      common::throw_errno("poll on the output of " + argv[0]);
    auto drain = [&](pollfd& pf, common::Fd& fd, std::string& buf, bool& open) {
      if (!open || !(pf.revents & (POLLIN | POLLHUP | POLLERR))) return;
      char chunk[65536];
      ssize_t n = ::read(fd.get(), chunk, sizeof chunk);
      if (n > 0) {
        size_t room = max_output > buf.size() ? max_output - buf.size() : 0;
        buf.append(chunk, std::min(room, static_cast<size_t>(n)));
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        open = false;
      }
    };
    drain(p[0], out.read, r.out, out_open);
    drain(p[1], err.read, r.err, err_open);
  }
  if (!exited) common::retry_eintr([&] { return ::waitpid(pid, &status, 0); });
  r.status = decode(status);
  return r;
}

pid_t start_conmon(const ConmonArgs& a, std::chrono::milliseconds timeout) {
  std::vector<std::string> argv = {a.conmon.string(),
                                   "--api-version",
                                   "1",
                                   "-c",
                                   a.id,
                                   "-u",
                                   a.id,
                                   "-n",
                                   a.id,
                                   "-r",
                                   a.runc.string(),
                                   "-b",
                                   a.bundle.string(),
                                   "-p",
                                   a.pid_file.string(),
                                   "-P",
                                   a.conmon_pid_file.string(),
                                   "-l",
                                   "k8s-file:" + a.log_path.string(),
                                   "--exit-dir",
                                   a.exit_dir.string(),
                                   "--socket-dir-path",
                                   a.socket_dir.string(),
                                   "--runtime-arg",
                                   "--root=" + a.runc_root.string(),
                                   "--log-level",
                                   "warning"};
  if (a.terminal) argv.push_back("--terminal");
  auto sync = common::make_pipe();
  common::Fd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  common::Fd log(::open(a.conmon_log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!log) common::throw_errno("creating " + a.conmon_log.string());
  pid_t first =
      spawn(argv, null.get(), log.get(), log.get(), sync.write.get(), {"_OCI_SYNCPIPE=3"}, a.bundle.string());
  sync.write.reset();
  int status = 0;
  common::retry_eintr(
      [&] { return ::waitpid(first, &status, 0); });  // conmon forks and its parent returns
  auto slurp_log = [&] {
    std::ifstream in(a.conmon_log);
    std::string s((std::istreambuf_iterator<char>(in)), {});
    return s.size() > 2000 ? s.substr(s.size() - 2000) : s;
  };
  if (decode(status) != 0)
    fail(grpc::StatusCode::INTERNAL, "conmon for {} failed (status {}): {}", a.id, decode(status),
         slurp_log());

  // conmon reports {"data": <container pid>} or {"data": -1, "message": "<runc's error>"}.
  std::string said;
  auto deadline = Clock::now() + timeout;
  while (said.find('\n') == std::string::npos) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) break;
    pollfd p{sync.read.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(sync.read.get(), buf, sizeof buf);
    if (n <= 0) break;
    said.append(buf, static_cast<size_t>(n));
  }
  pid_t monitor = 0;
  std::ifstream(a.conmon_pid_file) >> monitor;
  auto j = nlohmann::json::parse(said.substr(0, said.find('\n')), nullptr, false);
  if (j.is_discarded() || !j.contains("data") || !j["data"].is_number_integer() ||
      j["data"].get<int64_t>() <= 0) {
    if (monitor > 0) ::kill(monitor, SIGKILL);
    std::string why = j.is_discarded()
                          ? (said.empty() ? "conmon said nothing within the deadline" : said)
                          : j.value("message", said);
    while (!why.empty() && why.back() == '\n') why.pop_back();
    fail(grpc::StatusCode::UNKNOWN, "runc create {} failed: {}{}", a.id.substr(0, 12), why,
         slurp_log().empty() ? "" : " (conmon: " + slurp_log() + ")");
  }
  if (monitor <= 0)
    fail(grpc::StatusCode::INTERNAL, "conmon for {} wrote no pid file {}", a.id,
         a.conmon_pid_file.string());
  return monitor;
}

bool is_mount_point(const fs::path& target) {
  struct stat self, parent;
  if (::lstat(target.c_str(), &self) != 0 || ::lstat(target.parent_path().c_str(), &parent) != 0)
    return false;
  return self.st_dev != parent.st_dev;
}

void unmount(const fs::path& target) {
  for (int i = 0; i < 8 && is_mount_point(target); ++i) {
    if (::umount2(target.c_str(), UMOUNT_NOFOLLOW) == 0) continue;
    if (errno == EBUSY) {
      common::log::warn("runc", "{} is busy; detaching it lazily", target.string());
      common::check(::umount2(target.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW), "unmounting {}",
                    target.string());
    } else if (errno != EINVAL && errno != ENOENT) {
      common::throw_errno("unmounting " + target.string());
    }
  }
}

void mount_overlay(const fs::path& lower, const fs::path& upper, const fs::path& work,
                   const fs::path& target) {
  for (auto* p : {&lower, &upper, &work, &target})
    if (p->string().find_first_of(",:") != std::string::npos)
      fail(grpc::StatusCode::FAILED_PRECONDITION,
           "overlay path {} holds ',' or ':'; choose other frakti directories", p->string());
  std::string opts = fmt::format("lowerdir={},upperdir={},workdir={}", lower.string(),
                                 upper.string(), work.string());
  common::check(::mount("overlay", target.c_str(), "overlay", MS_NODEV, opts.c_str()),
                "mounting the overlay {} at {}", opts, target.string());
}

void mount_tmpfs(const fs::path& target, const std::string& options) {
  common::check(
      ::mount("shm", target.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, options.c_str()),
      "mounting a tmpfs at {}", target.string());
}

namespace {

// Attaches fs_image read-only to a free loop device (detached again on its last close or
// unmount) and mounts it as erofs at target.
void mount_loop_erofs(const fs::path& fs_image, const fs::path& target) {
  common::Fd image(::open(fs_image.c_str(), O_RDONLY | O_CLOEXEC));
  if (!image) common::throw_errno("opening the image filesystem " + fs_image.string());
  common::Fd control(::open("/dev/loop-control", O_RDWR | O_CLOEXEC));
  if (!control)
    common::throw_errno("opening /dev/loop-control (is the loop driver loaded? modprobe loop)");
  for (int attempt = 0;; ++attempt) {
    int n = common::check(::ioctl(control.get(), LOOP_CTL_GET_FREE), "finding a free loop device");
    std::string dev = fmt::format("/dev/loop{}", n);
    common::Fd loop(::open(dev.c_str(), O_RDONLY | O_CLOEXEC));
    if (!loop) common::throw_errno("opening " + dev);
    loop_config cfg{};
    cfg.fd = static_cast<uint32_t>(image.get());
    cfg.info.lo_flags = LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR;
    if (::ioctl(loop.get(), LOOP_CONFIGURE, &cfg) != 0) {
      if (errno == EBUSY && attempt < 16) continue;  // another process took it first
      common::throw_errno(fmt::format("attaching {} to {}", fs_image.string(), dev));
    }
    if (::mount(dev.c_str(), target.c_str(), "erofs", MS_RDONLY | MS_NODEV, nullptr) != 0)
      common::throw_errno(fmt::format(
          "mounting {} ({}) as erofs at {} (does the kernel have erofs? modprobe erofs)", dev,
          fs_image.string(), target.string()));
    return;
  }
}

}  // namespace

fs::path ImageMounts::acquire(const std::string& image_id, const fs::path& fs_image,
                              const std::string& user) {
  std::string hex = image_id.substr(image_id.find(':') + 1);
  fs::path mnt = dir_ / hex, users = dir_ / (hex + ".users");
  std::lock_guard lock(mu_);
  fs::create_directories(users);
  fs::create_directories(mnt);
  std::ofstream(users / user).flush();
  if (!is_mount_point(mnt)) {
    try {
      mount_loop_erofs(fs_image, mnt);
    } catch (...) {
      std::error_code ec;
      fs::remove(users / user, ec);
      throw;
    }
  }
  return mnt;
}

void ImageMounts::release(const std::string& image_id, const std::string& user) {
  std::string hex = image_id.substr(image_id.find(':') + 1);
  fs::path mnt = dir_ / hex, users = dir_ / (hex + ".users");
  std::lock_guard lock(mu_);
  std::error_code ec;
  fs::remove(users / user, ec);
  if (!fs::is_empty(users, ec) && !ec) return;
  unmount(mnt);
  fs::remove(mnt, ec);
  fs::remove(users, ec);
}

}  // namespace frakti::cri
