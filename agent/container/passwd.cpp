#include "agent/container/passwd.hpp"

#include <algorithm>
#include <charconv>

#include "agent/agent_error.hpp"

namespace frakti::agent::container {

namespace {

std::vector<std::string_view> split(std::string_view line, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (;;) {
    size_t end = line.find(sep, start);
    parts.push_back(
        line.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

std::optional<uint32_t> parse_id(std::string_view s) {
  if (s.empty() || s.size() > 10) return std::nullopt;
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v >= 0xffffffffu) return std::nullopt;
  return static_cast<uint32_t>(v);
}

// Calls f for every line that may be an entry (not empty, comment or NIS).
template <typename F>
void for_each_line(std::string_view text, F&& f) {
  for (std::string_view line : split(text, '\n')) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line[0] == '#' || line[0] == '+' || line[0] == '-') continue;
    if (line.find('\0') != std::string_view::npos) continue;
    f(line);
  }
}

}  // namespace

std::vector<PasswdEntry> parse_passwd(std::string_view text) {
  std::vector<PasswdEntry> out;
  for_each_line(text, [&](std::string_view line) {
    auto f = split(line, ':');
    if (f.size() != 7 || f[0].empty()) return;
    auto uid = parse_id(f[2]);
    auto gid = parse_id(f[3]);
    if (!uid || !gid) return;
    out.push_back({std::string(f[0]), *uid, *gid, std::string(f[5])});
  });
  return out;
}

std::vector<GroupEntry> parse_group(std::string_view text) {
  std::vector<GroupEntry> out;
  for_each_line(text, [&](std::string_view line) {
    auto f = split(line, ':');
    if (f.size() != 4 || f[0].empty()) return;
    auto gid = parse_id(f[2]);
    if (!gid) return;
    GroupEntry g{std::string(f[0]), *gid, {}};
    if (!f[3].empty()) {
      for (auto m : split(f[3], ',')) {
        if (!m.empty()) g.members.emplace_back(m);
      }
    }
    out.push_back(std::move(g));
  });
  return out;
}

ResolvedUser resolve_user(const UserSpec& user, const std::optional<std::string>& passwd_text,
                          const std::optional<std::string>& group_text) {
  auto users = passwd_text ? parse_passwd(*passwd_text) : std::vector<PasswdEntry>{};
  auto groups = group_text ? parse_group(*group_text) : std::vector<GroupEntry>{};
  ResolvedUser out;
  const PasswdEntry* entry = nullptr;
  if (user.username) {
    auto it = std::find_if(users.begin(), users.end(),
                           [&](const PasswdEntry& e) { return e.name == *user.username; });
    if (it == users.end()) {
      throw AgentError(v1::Error::CODE_INVALID_ARGUMENT,
                       fmt::format("user '{}' is not in the image's /etc/passwd{}", *user.username,
                                   passwd_text ? "" : " (the image has no /etc/passwd)"));
    }
    entry = &*it;
    out.uid = entry->uid;
    out.gid = entry->gid;
  } else {
    out.uid = user.uid;
    out.gid = user.gid;
    auto it = std::find_if(users.begin(), users.end(),
                           [&](const PasswdEntry& e) { return e.uid == user.uid; });
    if (it != users.end()) entry = &*it;
  }
  if (entry && !entry->home.empty()) out.home = entry->home;
  auto add = [&](gid_t g) {
    if (std::find(out.groups.begin(), out.groups.end(), g) == out.groups.end())
      out.groups.push_back(g);
  };
  if (entry) {
    for (const auto& g : groups) {
      if (std::find(g.members.begin(), g.members.end(), entry->name) != g.members.end()) add(g.gid);
    }
  }
  for (gid_t g : user.additional_gids) add(g);
  return out;
}

}  // namespace frakti::agent::container
