// vmctl run: one container in a fresh micro-VM, like `docker run`.

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <sstream>
#include <cmath>

#include <fmt/format.h>

#include "tools/vmctl/context.hpp"
#include "tools/vmctl/stdio.hpp"
#include "tools/vmctl/supervisor.hpp"

namespace frakti::vmctl {

namespace {

// "512m", "1g", "1073741824", "256MiB" -> bytes.
int64_t parse_size(const std::string& text) {
  double v = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, v);
  if (ec != std::errc() || v <= 0) throw UsageError(fmt::format("bad size \"{}\" (examples: 512m, 2g)", text));
  std::string unit(p, end);
  for (auto& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  double mult = 1;
  if (unit == "" || unit == "b") {
    mult = 1;
  } else if (unit == "k" || unit == "kb" || unit == "kib") {
    mult = 1024.0;
  } else if (unit == "m" || unit == "mb" || unit == "mib") {
    mult = 1024.0 * 1024;
  } else if (unit == "g" || unit == "gb" || unit == "gib") {
    mult = 1024.0 * 1024 * 1024;
  } else {
    throw UsageError(fmt::format("bad size \"{}\" (examples: 512m, 2g)", text));
  }
  return static_cast<int64_t>(v * mult);
}

// A number given to --OPTION, or a UsageError naming the option.
double parse_number(const std::string& option, const std::string& text) {
  double v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size()) {
    throw UsageError(fmt::format("bad {} \"{}\" (expected a number)", option, text));
  }
  return v;
}

std::vector<std::string> split_words(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

// Detached: fork the supervisor into its own session; the parent waits until the container
// runs (or failed) and prints its ID.
int run_detached(const StateDir& state, RunPlan& plan, Context& ctx) {
  common::Pipe notify = common::make_pipe();
  pid_t pid = ::fork();
  if (pid < 0) throw std::system_error(errno, std::generic_category(), "cannot fork the container's supervisor");
  if (pid == 0) {
    notify.read.reset();
    ::setsid();
    int devnull = ::open("/dev/null", O_RDWR);
    ::dup2(devnull, 0);
    ::dup2(devnull, 1);
    // The supervisor's own complaints go to its container directory.
    int err = ::open((state.dir(plan.record.id) / "vmctl.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    ::dup2(err >= 0 ? err : devnull, 2);
    // A daemon keeps only what it owns: fds inherited from whoever started vmctl (a test
    // runner waiting for its pipe to close, a terminal) would be held for the container's life.
    int keep = notify.write.release();
    if (keep != 3) {
      ::dup2(keep, 3);
      ::close(keep);
    }
    ::close_range(4, ~0U, 0);
    plan.notify_fd = 3;
    int code = 125;
    try {
      code = supervise(state, plan);
    } catch (const SupervisorError& e) {
      std::string msg = fmt::format("error {} {}\n", e.exit_code(), e.what());
      if (plan.notify_fd >= 0) (void)!::write(plan.notify_fd, msg.data(), msg.size());
      fmt::print(stderr, "vmctl: {}\n", e.what());
      code = e.exit_code();
    } catch (const std::exception& e) {
      std::string msg = fmt::format("error 125 {}\n", e.what());
      if (plan.notify_fd >= 0) (void)!::write(plan.notify_fd, msg.data(), msg.size());
      code = 125;
    }
    ::_exit(code);
  }
  notify.write.reset();
  std::string answer;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(notify.read.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    answer.append(buf, static_cast<size_t>(n));
  }
  if (answer == "ok\n") {
    fmt::print(ctx.out, "{}\n", plan.record.id);
    return 0;
  }
  if (answer.rfind("error ", 0) == 0) {
    int code = std::atoi(answer.c_str() + 6);
    std::string msg = answer.substr(answer.find(' ', 6) + 1);
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    fmt::print(stderr, "vmctl: run: {}\n", msg);
    return code ? code : 125;
  }
  fmt::print(stderr, "vmctl: run: the container's supervisor died while starting (see {})\n",
             (state.dir(plan.record.id) / "vmctl.log").string());
  return 125;
}

}  // namespace

int cmd_run(Context& ctx) {
  Args args(ctx.args,
            {"--name", "--cpus", "--memory", "-m", "-e", "--env", "-w", "--workdir", "-u", "--user", "--entrypoint",
             "--hostname", "-h", "--cap-add", "--cap-drop", "--pids-limit", "--boot-timeout", "--vm-memory"},
            {"--rm", "-i", "--interactive", "-t", "--tty", "-d", "--detach", "--read-only", "--privileged"}, 1);
  if (args.positional().empty()) throw UsageError("expected an image");
  const std::string image_ref = args.positional()[0];
  ctx.action = "run " + image_ref;

  RunPlan plan;
  auto flag = [&](const char* a, const char* b) { return args.flag(a) || args.flag(b); };
  auto value = [&](const char* a, const char* b) { return args.value(a) ? args.value(a) : args.value(b); };
  plan.interactive = flag("-i", "--interactive");
  plan.terminal = flag("-t", "--tty");
  plan.detached = flag("-d", "--detach");
  bool rm = args.flag("--rm");
  if (plan.detached && (plan.interactive || plan.terminal)) {
    throw UsageError("-d runs the container in the background: it cannot take -i or -t (use 'vmctl exec -it' later)");
  }
  if (plan.terminal && plan.interactive && !::isatty(STDIN_FILENO)) {
    throw UsageError("the input is not a terminal: drop -t, or run from a terminal");
  }

  auto& c = plan.container;
  c.cmd.assign(args.positional().begin() + 1, args.positional().end());
  if (auto e = args.value("--entrypoint")) c.entrypoint = split_words(*e);
  for (auto* k : {"-e", "--env"}) {
    for (auto& e : args.values(k)) c.env.push_back(e);
  }
  if (auto w = value("-w", "--workdir")) c.working_dir = *w;
  if (auto u = value("-u", "--user")) c.user = *u;
  c.read_only_rootfs = args.flag("--read-only");
  c.privileged = args.flag("--privileged");
  c.cap_add = args.values("--cap-add");
  c.cap_drop = args.values("--cap-drop");
  c.terminal = plan.terminal;
  if (plan.terminal) {
    auto [rows, cols] = terminal_size(STDIN_FILENO);
    c.terminal_rows = rows;
    c.terminal_cols = cols;
  }
  if (auto m = value("-m", "--memory")) c.memory_limit_bytes = parse_size(*m);
  if (c.memory_limit_bytes && c.memory_limit_bytes < (6 << 20)) throw UsageError("--memory must be at least 6m");
  if (auto p = args.value("--pids-limit")) c.pids_limit = static_cast<int64_t>(parse_number("--pids-limit", *p));
  double cpus = 0;
  if (auto v = args.value("--cpus")) {
    cpus = parse_number("--cpus", *v);
    if (cpus <= 0 || cpus > 32) throw UsageError("--cpus must be between 0 and 32");
    c.cpus = cpus;
  }
  // The VM: enough vCPUs for the quota; the memory limit plus room for the guest kernel,
  // the agent and the writable layer (tmpfs).
  plan.cpus = cpus > 0 ? static_cast<unsigned>(std::ceil(cpus)) : 1;
  plan.memory_mib = c.memory_limit_bytes ? static_cast<unsigned>((c.memory_limit_bytes >> 20) + 192) : 256;
  if (auto v = args.value("--vm-memory")) plan.memory_mib = static_cast<unsigned>(parse_size(*v) >> 20);
  if (auto t = args.value("--boot-timeout")) plan.boot_timeout = std::chrono::milliseconds(static_cast<int64_t>(parse_number("--boot-timeout", *t) * 1000));
  if (const char* l = std::getenv("FRAKTI_VMM_LOG_LEVEL")) plan.vmm_log_level = l;

  if (::access("/dev/kvm", R_OK | W_OK) != 0) {
    throw CommandError(ctx.action, "/dev/kvm is missing or not accessible: this machine cannot run micro-VMs",
                       "run as root on a machine with KVM, or inside tools/kvmbox");
  }

  StateDir state(ctx.state);
  state.collect_leftovers();

  // The image: found locally, else pulled, then its filesystem image (built once per image).
  auto& images = ctx.images();
  auto rec = images.find(image_ref);
  if (!rec) {
    fmt::print(stderr, "vmctl: image {} not found locally, pulling\n", image_ref);
    images.pull(image_ref, {});
    rec = images.find(image_ref);
  }
  plan.fs_image = images.fs_image(rec->id.str());
  plan.image_config = rec->config;

  ContainerRecord& r = plan.record;
  r.name = args.value("--name").value_or("");
  r.image = image_ref;
  r.image_id = rec->id.str();
  r.auto_remove = rm;
  r.detached = plan.detached;
  r.terminal = plan.terminal;
  r.stop_signal = rec->config.stop_signal;
  try {
    r.command = sandbox::resolve_command(rec->config, c);
    // Validate everything the agent will get before a VM is booted for nothing.
    auto req = sandbox::make_create_request(rec->config, c);
    const auto& caps = req.process().capabilities().bounding();
    r.caps.assign(caps.begin(), caps.end());
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  r.cwd = c.working_dir.empty() ? rec->config.working_dir : c.working_dir;
  r.user = c.user.empty() ? rec->config.user : c.user;
  r = state.create(r);
  c.id = r.id;
  c.hostname = value("-h", "--hostname").value_or(r.short_id());
  r.env = sandbox::resolve_env(rec->config, c);
  state.save(r);

  if (plan.detached) return run_detached(state, plan, ctx);
  try {
    return supervise(state, plan);
  } catch (const SupervisorError& e) {
    fmt::print(stderr, "vmctl: run: {}\n", e.what());
    return e.exit_code();
  }
}

}  // namespace frakti::vmctl
