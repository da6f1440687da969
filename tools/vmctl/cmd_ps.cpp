// vmctl ps: running containers (-a: all), like `docker ps`.

#include <fmt/format.h>

#include "tools/vmctl/context.hpp"
#include "tools/vmctl/state.hpp"

namespace frakti::vmctl {

namespace {

std::string ago(int64_t ns) {
  int64_t s = (now_ns() - ns) / 1000000000;
  if (s < 60) return fmt::format("{} seconds", s);
  if (s < 3600) return fmt::format("{} minutes", s / 60);
  if (s < 86400) return fmt::format("{} hours", s / 3600);
  return fmt::format("{} days", s / 86400);
}

std::string status_text(const ContainerRecord& r) {
  if (r.status == "running") return "Up " + ago(r.started_ns);
  if (r.status == "exited") {
    std::string s = fmt::format("Exited ({}) {} ago", r.exit_code, ago(r.finished_ns ? r.finished_ns : r.created_ns));
    if (r.reason == "OOMKilled") s += " (OOMKilled)";
    return s;
  }
  return "Created";
}

}  // namespace

int cmd_ps(Context& ctx) {
  Args args(ctx.args, {}, {"-a", "--all", "-q", "--quiet"});
  bool all = args.flag("-a") || args.flag("--all");
  bool quiet = args.flag("-q") || args.flag("--quiet");
  StateDir state(ctx.state);
  state.collect_leftovers();
  if (!quiet) fmt::print(ctx.out, "{:<14}{:<24}{:<20}{:<28}{:<28}\n", "CONTAINER ID", "NAME", "IMAGE", "COMMAND", "STATUS");
  for (auto& r : state.list()) {
    if (!all && r.status != "running") continue;
    if (quiet) {
      fmt::print(ctx.out, "{}\n", r.short_id());
      continue;
    }
    std::string cmd = fmt::format("\"{}\"", fmt::join(r.command, " "));
    if (cmd.size() > 26) cmd = cmd.substr(0, 22) + "...\"";
    fmt::print(ctx.out, "{:<14}{:<24}{:<20}{:<28}{:<28}\n", r.short_id(), r.name, r.image, cmd, status_text(r));
  }
  return 0;
}

}  // namespace frakti::vmctl
