// vmctl: frakti's command line for use without Kubernetes. main() only parses the global
// options and dispatches; every subcommand lives in its own cmd_<name>.cpp.
//
// Adding a subcommand: write cmd_<name>.cpp defining `int cmd_<name>(Context&)`, add it to
// CMakeLists.txt, and add one X(...) line to VMCTL_COMMANDS below.

#include <unistd.h>

#include <cstring>
#include <string>
#include <system_error>

#include <fmt/format.h>

#include "common/log.hpp"
#include "image/error.hpp"
#include "tools/vmctl/context.hpp"

// X(name, usage, summary)
#define VMCTL_COMMANDS(X)                                                                                     \
  X(pull, "pull [--platform OS/ARCH[/VARIANT]] [--creds USER:PASS] REF", "pull an image from a registry") \
  X(images, "images [-q] [--digests] [REF]", "list images")                                              \
  X(rmi, "rmi NAME|ID...", "remove images (a tag removes that name; an ID the whole image)")             \
  X(load, "load [--name REPO] [--platform P] PATH", "import an OCI layout directory or a docker-archive tarball")     \
  X(run, "run [--rm] [-i] [-t] [-d] [--name N] [--cpus N] [--memory SIZE] [-e K=V] [-w DIR] [-u USER] "             \
         "[--entrypoint E] [--hostname H] [--read-only] [--cap-add C] [--cap-drop C] [--privileged] IMAGE [CMD...]",  \
    "run a container in a fresh micro-VM")                                                                      \
  X(exec, "exec [-i] [-t] [-d] [-e K=V] [-w DIR] [-u USER] NAME CMD...", "run a command in a running container") \
  X(ps, "ps [-a] [-q]", "list containers")                                                                     \
  X(logs, "logs NAME", "print a container's output")                                                          \
  X(stop, "stop [-t SECONDS] NAME...", "stop containers (their signal, then SIGKILL after the timeout)")     \
  X(rm, "rm [-f] NAME...", "remove stopped containers (-f: stop them first)")

namespace frakti::vmctl {

#define VMCTL_DECLARE(name, usage, summary) int cmd_##name(Context&);
VMCTL_COMMANDS(VMCTL_DECLARE)

namespace {

struct Command {
  const char* name;
  const char* usage;
  const char* summary;
  int (*run)(Context&);
};

#define VMCTL_ENTRY(name, usage, summary) Command{#name, usage, summary, cmd_##name},
const Command kCommands[] = {VMCTL_COMMANDS(VMCTL_ENTRY)};

void usage(FILE* f) {
  fmt::print(f, "usage: vmctl [--root DIR] [--state DIR] [--log-level LEVEL] [--registry-config FILE] [--docker-config FILE] COMMAND [ARGS]\n\n");
  for (auto& c : kCommands) fmt::print(f, "  {:<8} {}\n", c.name, c.summary);
  fmt::print(f, "\nRun 'vmctl COMMAND --help' for a command's options.\n");
}

// What a user can do about each kind of image failure.
const char* hint_for(image::ErrorKind k) {
  using image::ErrorKind;
  switch (k) {
    case ErrorKind::invalid: return "check the name or file";
    case ErrorKind::not_found: return "check the name with 'vmctl images' or on the registry";
    case ErrorKind::auth: return "pass --creds USER:PASS or add the registry to ~/.docker/config.json";
    case ErrorKind::network: return "check that the registry is reachable and its entry in the registries file";
    case ErrorKind::integrity: return "the registry or a proxy served corrupt data; nothing was stored, try again";
    case ErrorKind::unsupported: return "see the message; use --platform to choose another platform";
    case ErrorKind::hostile: return "the image contains unsafe paths; do not use it";
    case ErrorKind::cancelled: return "run it again";
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  Context ctx;
  int i = 1;
  try {
    for (; i < argc && argv[i][0] == '-'; ++i) {
      std::string a = argv[i];
      if (a == "-h" || a == "--help") {
        usage(stdout);
        return 0;
      }
      auto need = [&]() -> std::string {
        if (i + 1 >= argc) throw UsageError(fmt::format("option {} needs a value", a));
        return argv[++i];
      };
      if (a == "--root") {
        ctx.root = need();
      } else if (a == "--state") {
        ctx.state = need();
      } else if (a == "--log-level") {
        common::log::set_level(common::log::parse_level(need()));
      } else if (a == "--registry-config") {
        ctx.registry_config = need();
        ctx.registry_config_given = true;
      } else if (a == "--docker-config") {
        ctx.docker_config = need();
      } else {
        throw UsageError(fmt::format("unknown option {}", a));
      }
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "vmctl: {}\n", e.what());
    usage(stderr);
    return 2;
  }
  if (i >= argc) {
    usage(stderr);
    return 2;
  }
  std::string name = argv[i];
  const Command* cmd = nullptr;
  for (auto& c : kCommands) {
    if (name == c.name) cmd = &c;
  }
  if (!cmd) {
    fmt::print(stderr, "vmctl: unknown command \"{}\" (run 'vmctl --help' for the list)\n", name);
    return 2;
  }
  ctx.args.assign(argv + i + 1, argv + argc);
  if (!ctx.args.empty() && (ctx.args[0] == "--help" || ctx.args[0] == "-h")) {
    fmt::print("usage: vmctl {}\n  {}\n", cmd->usage, cmd->summary);
    return 0;
  }
  ctx.out_is_tty = ::isatty(STDOUT_FILENO);
  ctx.action = name;
  try {
    return cmd->run(ctx);
  } catch (const UsageError& e) {
    fmt::print(stderr, "vmctl: {}: {}\nusage: vmctl {}\n", name, e.what(), cmd->usage);
    return 2;
  } catch (const image::ImageError& e) {
    fmt::print(stderr, "vmctl: {}: {} ({})\n", ctx.action, e.what(), hint_for(e.kind()));
  } catch (const CommandError& e) {
    fmt::print(stderr, "vmctl: {}\n", e.what());
  } catch (const std::system_error& e) {
    fmt::print(stderr, "vmctl: {}: {} (check permissions on --root {})\n", ctx.action, e.what(), ctx.root.string());
  } catch (const std::exception& e) {
    fmt::print(stderr, "vmctl: {}: {}\n", ctx.action, e.what());
  }
  return 1;
}

}  // namespace frakti::vmctl

int main(int argc, char** argv) { return frakti::vmctl::main(argc, argv); }
