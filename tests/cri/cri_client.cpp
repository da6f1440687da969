#include "tests/cri/cri_client.hpp"

#include <future>
#include <vector>

#include <fstream>

#include <catch2/catch.hpp>

namespace frakti::test {

using namespace std::chrono_literals;

std::string run_pod(CriDaemon& d, const rt::PodSandboxConfig& cfg) {
  rt::RunPodSandboxRequest req;
  *req.mutable_config() = cfg;
  rt::RunPodSandboxResponse out;
  auto st = d.runtime().RunPodSandbox(deadline(400s).get(), req, &out);
  INFO(st.error_message() << "\n" << d.daemon_log());
  REQUIRE(st.ok());
  return out.pod_sandbox_id();
}

grpc::Status create(CriDaemon& d, const std::string& pod, const rt::PodSandboxConfig& pcfg,
                    const rt::ContainerConfig& cfg, std::string* id) {
  rt::CreateContainerRequest req;
  req.set_pod_sandbox_id(pod);
  *req.mutable_config() = cfg;
  *req.mutable_sandbox_config() = pcfg;
  rt::CreateContainerResponse out;
  auto st = d.runtime().CreateContainer(deadline(120s).get(), req, &out);
  if (id) *id = out.container_id();
  return st;
}

std::string start_container(CriDaemon& d, const std::string& pod, const rt::PodSandboxConfig& pcfg,
                            const rt::ContainerConfig& cfg) {
  std::string id;
  auto st = create(d, pod, pcfg, cfg, &id);
  INFO(st.error_message());
  REQUIRE(st.ok());
  rt::StartContainerRequest s;
  s.set_container_id(id);
  rt::StartContainerResponse so;
  st = d.runtime().StartContainer(deadline(120s).get(), s, &so);
  INFO(st.error_message());
  REQUIRE(st.ok());
  return id;
}

rt::ContainerStatus status_of(CriDaemon& d, const std::string& id) {
  rt::ContainerStatusRequest r;
  r.set_container_id(id);
  rt::ContainerStatusResponse out;
  auto st = d.runtime().ContainerStatus(deadline().get(), r, &out);
  INFO(st.error_message());
  REQUIRE(st.ok());
  return out.status();
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), {}};
}

std::string run_and_probe(CriDaemon& d, const rt::PodSandboxConfig& pcfg, const rt::ContainerConfig& ccfg,
                          const std::string& tag) {
  rt::RunPodSandboxRequest req;
  *req.mutable_config() = pcfg;
  rt::RunPodSandboxResponse out;
  auto st = d.runtime().RunPodSandbox(deadline(std::chrono::seconds(900)).get(), req, &out);
  if (!st.ok()) return "run: " + st.error_message();
  rt::CreateContainerRequest cr;
  cr.set_pod_sandbox_id(out.pod_sandbox_id());
  *cr.mutable_config() = ccfg;
  *cr.mutable_sandbox_config() = pcfg;
  rt::CreateContainerResponse co;
  st = d.runtime().CreateContainer(deadline(std::chrono::seconds(300)).get(), cr, &co);
  if (!st.ok()) return "create: " + st.error_message();
  rt::StartContainerRequest sr;
  sr.set_container_id(co.container_id());
  rt::StartContainerResponse so;
  st = d.runtime().StartContainer(deadline(std::chrono::seconds(300)).get(), sr, &so);
  if (!st.ok()) return "start: " + st.error_message();
  rt::ExecSyncRequest er;
  er.set_container_id(co.container_id());
  er.add_cmd("echo");
  er.add_cmd(tag);
  rt::ExecSyncResponse eo;
  st = d.runtime().ExecSync(deadline(std::chrono::seconds(300)).get(), er, &eo);
  if (!st.ok()) return "exec: " + st.error_message();
  if (eo.stdout() != tag + "\n") return "exec said " + eo.stdout();
  return "";
}

std::string remove_all_pods_concurrently(CriDaemon& d) {
  rt::ListPodSandboxResponse lp;
  auto st = d.runtime().ListPodSandbox(deadline().get(), {}, &lp);
  if (!st.ok()) return "list: " + st.error_message();
  std::vector<std::future<grpc::Status>> removes;
  for (auto& p : lp.items()) {
    removes.push_back(std::async(std::launch::async, [&d, id = p.id()] {
      rt::RemovePodSandboxRequest r;
      r.set_pod_sandbox_id(id);
      rt::RemovePodSandboxResponse out;
      return d.runtime().RemovePodSandbox(deadline(std::chrono::seconds(300)).get(), r, &out);
    }));
  }
  std::string errors;
  for (auto& r : removes) {
    auto rst = r.get();
    if (!rst.ok()) errors += rst.error_message() + "\n";
  }
  return errors;
}

}  // namespace frakti::test
