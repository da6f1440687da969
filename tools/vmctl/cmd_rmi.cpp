// vmctl rmi: remove image names or whole images; unreferenced blobs are collected.

#include <fmt/format.h>

#include "image/error.hpp"
#include "tools/vmctl/context.hpp"

namespace frakti::vmctl {

int cmd_rmi(Context& ctx) {
  Args args(ctx.args, {}, {});
  if (args.positional().empty()) throw UsageError("expected at least one image name or ID");
  int rc = 0;
  for (auto& name : args.positional()) {
    try {
      image::RemoveResult r = ctx.images().remove(name);
      for (auto& u : r.untagged) fmt::print(ctx.out, "untagged: {}\n", u);
      for (auto& d : r.deleted) fmt::print(ctx.out, "deleted: {}\n", d.str());
    } catch (const image::ImageError& e) {
      // Keep going: one missing name should not stop the others.
      fmt::print(stderr, "vmctl: rmi {}: {} (list images with 'vmctl images')\n", name, e.what());
      rc = 1;
    }
  }
  return rc;
}

}  // namespace frakti::vmctl
