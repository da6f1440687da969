// vmctl rm: delete stopped containers' records, logs and sockets (-f stops running ones).

#include <fmt/format.h>

#include "tools/vmctl/context.hpp"
#include "tools/vmctl/lifecycle.hpp"

namespace frakti::vmctl {

int cmd_rm(Context& ctx) {
  Args args(ctx.args, {}, {"-f", "--force"});
  if (args.positional().empty()) throw UsageError("expected at least one container");
  bool force = args.flag("-f") || args.flag("--force");
  StateDir state(ctx.state);
  state.collect_leftovers();
  int rc = 0;
  for (auto& name : args.positional()) {
    try {
      auto rec = state.find(name);
      if (rec.status == "running") {
        if (!force) throw CommandError("container " + name, "is running", "stop it first, or use 'vmctl rm -f'");
        stop_container(state, rec, std::chrono::seconds(0));
      }
      state.remove(rec.id);
      fmt::print(ctx.out, "{}\n", name);
    } catch (const CommandError& e) {
      fmt::print(stderr, "vmctl: rm: {}\n", e.what());
      rc = 1;
    }
  }
  return rc;
}

}  // namespace frakti::vmctl
