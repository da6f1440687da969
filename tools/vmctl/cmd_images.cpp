// vmctl images: list images, docker style.

#include <fmt/format.h>

#include "tools/vmctl/context.hpp"

namespace frakti::vmctl {

namespace {

// "docker.io/library/busybox:latest" -> {"docker.io/library/busybox", "latest"}
std::pair<std::string, std::string> split_tag(const std::string& t) {
  auto colon = t.rfind(':');
  auto slash = t.rfind('/');
  if (colon == std::string::npos || (slash != std::string::npos && colon < slash)) return {t, "<none>"};
  return {t.substr(0, colon), t.substr(colon + 1)};
}

}  // namespace

int cmd_images(Context& ctx) {
  Args args(ctx.args, {}, {"-q", "--quiet", "--digests", "--no-trunc"});
  if (args.positional().size() > 1) throw UsageError("at most one image name");
  bool quiet = args.flag("-q") || args.flag("--quiet");
  bool digests = args.flag("--digests");
  bool no_trunc = args.flag("--no-trunc");
  std::vector<image::ImageRecord> list;
  if (args.positional().empty()) {
    list = ctx.images().images();
  } else if (auto r = ctx.images().find(args.positional()[0])) {
    list.push_back(*r);
  }
  if (quiet) {
    for (auto& r : list) fmt::print(ctx.out, "{}\n", no_trunc ? r.id.str() : r.short_id());
    return 0;
  }
  fmt::print(ctx.out, "{:<40} {:<16} {}{:<14} {}\n", "REPOSITORY", "TAG", digests ? fmt::format("{:<72} ", "DIGEST") : "",
             "IMAGE ID", "SIZE");
  for (auto& r : list) {
    std::vector<std::pair<std::string, std::string>> names;
    for (auto& t : r.repo_tags) names.push_back(split_tag(t));
    if (names.empty()) names.push_back({"<none>", "<none>"});
    for (auto& [repo, tag] : names) {
      std::string dg;
      if (digests) {
        std::string d = "<none>";
        for (auto& rd : r.repo_digests) {
          if (rd.rfind(repo + "@", 0) == 0) d = rd.substr(repo.size() + 1);
        }
        dg = fmt::format("{:<72} ", d);
      }
      fmt::print(ctx.out, "{:<40} {:<16} {}{:<14} {}\n", repo, tag, dg, no_trunc ? r.id.str() : r.short_id(),
                 human_size(static_cast<uint64_t>(r.size)));
    }
  }
  return 0;
}

}  // namespace frakti::vmctl
