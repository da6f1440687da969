#include "agent/container/seccomp.hpp"

#include <seccomp.h>

#include <cerrno>
#include <memory>
#include <nlohmann/json.hpp>

#include "agent/agent_error.hpp"
#include "common/error.hpp"

namespace frakti::agent::container {

namespace {

uint32_t parse_action(const nlohmann::json& action, const nlohmann::json& errno_ret,
                      uint32_t default_errno, const std::string& field) {
  if (!action.is_string()) invalid_argument("seccomp profile: {} is not a string", field);
  std::string a = action.get<std::string>();
  uint32_t ret = default_errno;
  if (!errno_ret.is_null()) {
    if (!errno_ret.is_number_unsigned() || errno_ret.get<uint64_t>() > 4095)
      invalid_argument("seccomp profile: errnoRet of {} is not an errno", field);
    ret = errno_ret.get<uint32_t>();
  }
  if (a == "SCMP_ACT_ALLOW") return SCMP_ACT_ALLOW;
  if (a == "SCMP_ACT_ERRNO") return SCMP_ACT_ERRNO(ret);
  if (a == "SCMP_ACT_KILL" || a == "SCMP_ACT_KILL_THREAD") return SCMP_ACT_KILL_THREAD;
  if (a == "SCMP_ACT_KILL_PROCESS") return SCMP_ACT_KILL_PROCESS;
  if (a == "SCMP_ACT_TRAP") return SCMP_ACT_TRAP;
  if (a == "SCMP_ACT_LOG") return SCMP_ACT_LOG;
  if (a == "SCMP_ACT_TRACE") return SCMP_ACT_TRACE(ret);
  invalid_argument("seccomp profile: {} '{}' is not supported", field, a);
}

int parse_op(const std::string& op, const std::string& field) {
  static const std::pair<const char*, int> kOps[] = {{"SCMP_CMP_NE", SCMP_CMP_NE},
                                                     {"SCMP_CMP_LT", SCMP_CMP_LT},
                                                     {"SCMP_CMP_LE", SCMP_CMP_LE},
                                                     {"SCMP_CMP_EQ", SCMP_CMP_EQ},
                                                     {"SCMP_CMP_GE", SCMP_CMP_GE},
                                                     {"SCMP_CMP_GT", SCMP_CMP_GT},
                                                     {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ}};
  for (const auto& [name, value] : kOps) {
    if (op == name) return value;
  }
  invalid_argument("seccomp profile: {} op '{}' is not a comparison", field, op);
}

}  // namespace

SeccompProfile parse_seccomp_profile(const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) invalid_argument("seccomp profile is not a JSON object");
  SeccompProfile p;
  uint32_t default_errno = EPERM;
  if (j.contains("defaultErrnoRet")) {
    if (!j["defaultErrnoRet"].is_number_unsigned())
      invalid_argument("seccomp profile: defaultErrnoRet is not a number");
    default_errno = j["defaultErrnoRet"].get<uint32_t>();
  }
  if (!j.contains("defaultAction")) invalid_argument("seccomp profile has no defaultAction");
  p.default_action = parse_action(j["defaultAction"], nullptr, default_errno, "defaultAction");
  if (j.contains("listenerPath") && !j["listenerPath"].get<std::string>().empty()) {
    invalid_argument(
        "seccomp profile: listenerPath (SCMP_ACT_NOTIFY) is not supported in the guest");
  }
  if (!j.contains("syscalls")) return p;
  const auto& calls = j["syscalls"];
  if (!calls.is_array()) invalid_argument("seccomp profile: syscalls is not an array");
  for (size_t i = 0; i < calls.size(); ++i) {
    std::string field = fmt::format("syscalls[{}]", i);
    const auto& c = calls[i];
    if (!c.is_object() || !c.contains("names") || !c["names"].is_array())
      invalid_argument("seccomp profile: {} has no names array", field);
    SeccompRule rule;
    for (const auto& n : c["names"]) {
      if (!n.is_string()) invalid_argument("seccomp profile: {}.names holds a non-string", field);
      rule.names.push_back(n.get<std::string>());
    }
    rule.action =
        parse_action(c.value("action", nlohmann::json()), c.value("errnoRet", nlohmann::json()),
                     default_errno, field + ".action");
    if (c.contains("args") && !c["args"].is_null()) {
      if (!c["args"].is_array() || c["args"].size() > 6)
        invalid_argument("seccomp profile: {}.args is not an array of at most 6", field);
      for (const auto& a : c["args"]) {
        if (!a.is_object() || !a.contains("index") || !a.contains("value") || !a.contains("op")) {
          invalid_argument("seccomp profile: {}.args needs index, value and op", field);
        }
        SeccompArg arg;
        if (!a["index"].is_number_unsigned() || a["index"].get<unsigned>() > 5)
          invalid_argument("seccomp profile: {}.args index is not 0-5", field);
        arg.index = a["index"].get<unsigned>();
        if (!a["value"].is_number_unsigned())
          invalid_argument("seccomp profile: {}.args value is not a number", field);
        arg.value = a["value"].get<uint64_t>();
        arg.value_two = a.value("valueTwo", uint64_t{0});
        if (!a["op"].is_string())
          invalid_argument("seccomp profile: {}.args op is not a string", field);
        arg.op = parse_op(a["op"].get<std::string>(), field);
        rule.args.push_back(arg);
      }
    }
    p.rules.push_back(std::move(rule));
  }
  return p;
}

void install_seccomp_profile(const std::string& json) {
  SeccompProfile p = parse_seccomp_profile(json);
  std::unique_ptr<void, void (*)(scmp_filter_ctx)> ctx(seccomp_init(p.default_action),
                                                       seccomp_release);
  if (!ctx) common::throw_error(ENOMEM, "seccomp_init");
  // no_new_privileges is the process's own setting, applied separately.
  seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_NNP, 0);
  for (const auto& rule : p.rules) {
    std::vector<scmp_arg_cmp> args;
    for (const auto& a : rule.args) {
      args.push_back(scmp_arg_cmp{a.index, static_cast<scmp_compare>(a.op), a.value, a.value_two});
    }
    for (const auto& name : rule.names) {
      int nr = seccomp_syscall_resolve_name(name.c_str());
      if (nr == __NR_SCMP_ERROR) continue;
      int rc = seccomp_rule_add_array(ctx.get(), rule.action, nr,
                                      static_cast<unsigned>(args.size()), args.data());
      // A rule with the default action is redundant; libseccomp refuses it.
      if (rc < 0 && rc != -EACCES && rc != -EEXIST) {
        common::throw_error(-rc, fmt::format("seccomp rule for {}", name));
      }
    }
  }
  int rc = seccomp_load(ctx.get());
  if (rc < 0) common::throw_error(-rc, "load the seccomp filter");
}

}  // namespace frakti::agent::container
