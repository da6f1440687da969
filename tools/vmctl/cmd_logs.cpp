// vmctl logs: a container's output from its CRI-format log, stdout and stderr kept apart.

#include <unistd.h>

#include <fmt/format.h>

#include "sandbox/cri_log.hpp"
#include "tools/vmctl/context.hpp"
#include "tools/vmctl/state.hpp"

namespace frakti::vmctl {

int cmd_logs(Context& ctx) {
  Args args(ctx.args, {}, {});
  if (args.positional().size() != 1) throw UsageError("expected one container");
  StateDir state(ctx.state);
  auto rec = state.find(args.positional()[0]);
  std::error_code ec;
  if (!std::filesystem::exists(state.log(rec.id), ec)) {
    throw CommandError("logs " + rec.name, "no log was kept", "containers run with --rm -d keep no log");
  }
  for (auto& r : sandbox::read_cri_log(state.log(rec.id))) {
    FILE* f = r.stream == sandbox::LogStream::stdout_ ? ctx.out : stderr;
    fmt::print(f, "{}{}", r.content, r.partial ? "" : "\n");
  }
  return 0;
}

}  // namespace frakti::vmctl
