#include "cri/server/resources.hpp"

#include <algorithm>

#include "cri/server/errors.hpp"

namespace frakti::cri {

using grpc::StatusCode;

namespace {

bool cpu_list(const std::string& s) {  // "0-3,5" as cpuset.cpus/mems take it
  return s.size() <= 256 && std::all_of(s.begin(), s.end(), [](char ch) { return (ch >= '0' && ch <= '9') || ch == ',' || ch == '-'; });
}

}  // namespace

void check_resources(const rt::LinuxContainerResources& r) {
  if (r.memory_limit_in_bytes() < 0) fail(StatusCode::INVALID_ARGUMENT, "memory_limit_in_bytes {} is negative", r.memory_limit_in_bytes());
  if (r.memory_limit_in_bytes() > 0 && r.memory_limit_in_bytes() < 6 * 1024 * 1024)
    fail(StatusCode::INVALID_ARGUMENT, "memory_limit_in_bytes {} is below 6 MiB, too little for any container", r.memory_limit_in_bytes());
  if (r.memory_swap_limit_in_bytes() < -1) fail(StatusCode::INVALID_ARGUMENT, "memory_swap_limit_in_bytes {} is below -1", r.memory_swap_limit_in_bytes());
  if (r.memory_swap_limit_in_bytes() > 0 && r.memory_swap_limit_in_bytes() < r.memory_limit_in_bytes())
    fail(StatusCode::INVALID_ARGUMENT, "memory_swap_limit_in_bytes {} is below memory_limit_in_bytes {} (it counts memory plus swap)",
        r.memory_swap_limit_in_bytes(), r.memory_limit_in_bytes());
  if (r.cpu_quota() < -1) fail(StatusCode::INVALID_ARGUMENT, "cpu_quota {} is below -1", r.cpu_quota());
  if (r.cpu_quota() > 0 && r.cpu_quota() < 1000) fail(StatusCode::INVALID_ARGUMENT, "cpu_quota {} is below 1000 µs, the kernel's minimum", r.cpu_quota());
  if (r.cpu_period() != 0 && (r.cpu_period() < 1000 || r.cpu_period() > 1000000))
    fail(StatusCode::INVALID_ARGUMENT, "cpu_period {} is outside 1000..1000000 µs", r.cpu_period());
  if (r.cpu_shares() < 0 || r.cpu_shares() > 262144) fail(StatusCode::INVALID_ARGUMENT, "cpu_shares {} is outside 0..262144", r.cpu_shares());
  if (!cpu_list(r.cpuset_cpus())) fail(StatusCode::INVALID_ARGUMENT, "cpuset_cpus '{}' is not a CPU list like 0-3,5", r.cpuset_cpus().substr(0, 64));
  if (!cpu_list(r.cpuset_mems())) fail(StatusCode::INVALID_ARGUMENT, "cpuset_mems '{}' is not a node list like 0-1", r.cpuset_mems().substr(0, 64));
  if (r.oom_score_adj() < -1000 || r.oom_score_adj() > 1000) fail(StatusCode::INVALID_ARGUMENT, "oom_score_adj {} is outside -1000..1000", r.oom_score_adj());
}

agent::v1::Resources agent_resources(const rt::LinuxContainerResources& r) {
  for (const auto& h : r.hugepage_limits())
    if (h.limit() != 0)  // kubelet lists every page size of the node, with 0 when unused
      fail(StatusCode::INVALID_ARGUMENT, "hugepage limit {} for {}: VM pods have no huge pages; use a runc pod",
           h.limit(), h.page_size().substr(0, 16));
  if (!r.unified().empty())
    fail(StatusCode::INVALID_ARGUMENT, "cgroup v2 'unified' entries (such as {}) are not passed into VM pods",
         r.unified().begin()->first.substr(0, 64));
  agent::v1::Resources out;
  out.set_memory_limit_bytes(r.memory_limit_in_bytes());
  out.set_memory_swap_limit_bytes(r.memory_swap_limit_in_bytes());
  out.set_cpu_quota_us(r.cpu_quota() > 0 ? r.cpu_quota() : 0);
  out.set_cpu_period_us(r.cpu_period() ? static_cast<uint64_t>(r.cpu_period()) : (r.cpu_quota() > 0 ? 100000 : 0));
  out.set_cpu_shares(static_cast<uint64_t>(r.cpu_shares()));
  out.set_cpuset_cpus(r.cpuset_cpus());
  out.set_cpuset_mems(r.cpuset_mems());
  return out;
}

}  // namespace frakti::cri
