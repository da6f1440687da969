#include "tests/cri/cri_client.hpp"

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

}  // namespace frakti::test
