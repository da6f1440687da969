// vmctl load: import images without a registry (OCI layout directory or docker-archive).

#include <fmt/format.h>

#include "tools/vmctl/context.hpp"

namespace frakti::vmctl {

int cmd_load(Context& ctx) {
  Args args(ctx.args, {"--name", "--platform", "-i", "--input"}, {});
  std::string path;
  if (auto p = args.value("-i")) path = *p;
  if (auto p = args.value("--input")) path = *p;
  if (path.empty() && args.positional().size() == 1) path = args.positional()[0];
  if (path.empty() || args.positional().size() > 1) throw UsageError("expected one path (OCI layout directory or docker-archive .tar)");
  ctx.action = "load " + path;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    throw CommandError(ctx.action, "no such file or directory", "give the path of an OCI layout or a docker save tarball");
  }
  image::ImportOptions opts;
  if (auto n = args.value("--name")) opts.name = *n;
  if (auto p = args.value("--platform")) opts.platform = image::Platform::parse(*p);
  for (auto& r : ctx.images().load(path, opts)) {
    if (r.repo_tags.empty()) fmt::print(ctx.out, "loaded image ID: {}\n", r.id.str());
    for (auto& t : r.repo_tags) fmt::print(ctx.out, "loaded image: {} ({})\n", t, r.short_id());
  }
  return 0;
}

}  // namespace frakti::vmctl
