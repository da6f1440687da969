// bench/cri/pod_start: RunPodSandbox -> CreateContainer -> StartContainer -> the process runs,
// through frakti's CRI socket, N times, for one kind of pod:
//   vm    an ordinary pod (frakti-vmm micro-VM)
//   runc  the same pod with privileged = true (DESIGN decision 2 sends it to runc)
// Prints one line per iteration: milliseconds from RunPodSandbox's call until the container's
// process had written its first line (ExecSync not involved). Pods are removed between
// iterations, untimed. pod_start.sh runs it against a daemon of its own.
//
//   frakti-bench-pod-start SOCKET IMAGE vm|runc N

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>

#include "proto/cri/api.grpc.pb.h"

namespace rt = ::runtime::v1;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

std::unique_ptr<grpc::ClientContext> ctx() {
  auto c = std::make_unique<grpc::ClientContext>();
  c->set_deadline(std::chrono::system_clock::now() + 600s);
  return c;
}

void check(const grpc::Status& s, const char* what) {
  if (!s.ok()) throw std::runtime_error(fmt::format("{}: {}", what, s.error_message()));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    fmt::print(stderr, "usage: frakti-bench-pod-start SOCKET IMAGE vm|runc N\n");
    return 2;
  }
  std::string kind = argv[3];
  int n = std::stoi(argv[4]);
  auto stub = rt::RuntimeService::NewStub(grpc::CreateChannel(std::string("unix:") + argv[1], grpc::InsecureChannelCredentials()));
  std::string logs = fmt::format("/tmp/frakti-bench-logs-{}", ::getpid());
  std::filesystem::create_directories(logs);
  try {
    for (int i = 0; i < n; ++i) {
      rt::PodSandboxConfig pod;
      pod.mutable_metadata()->set_name(fmt::format("bench-{}", i));
      pod.mutable_metadata()->set_namespace_("bench");
      pod.mutable_metadata()->set_uid(fmt::format("{}-{}-{}", kind, ::getpid(), i));
      pod.set_hostname("bench");
      pod.set_log_directory(logs);
      if (kind == "runc") pod.mutable_linux()->mutable_security_context()->set_privileged(true);
      rt::ContainerConfig c;
      c.mutable_metadata()->set_name("main");
      c.mutable_image()->set_image(argv[2]);
      c.add_command("sh");
      c.add_command("-c");
      c.add_command("echo up; exec sleep 1000");
      c.set_log_path(fmt::format("{}-{}.log", kind, i));
      if (kind == "runc") c.mutable_linux()->mutable_security_context()->set_privileged(true);
      std::filesystem::path log_file = std::filesystem::path(logs) / c.log_path();

      auto t0 = Clock::now();
      rt::RunPodSandboxRequest run;
      *run.mutable_config() = pod;
      rt::RunPodSandboxResponse ran;
      check(stub->RunPodSandbox(ctx().get(), run, &ran), "RunPodSandbox");
      rt::CreateContainerRequest cr;
      cr.set_pod_sandbox_id(ran.pod_sandbox_id());
      *cr.mutable_config() = c;
      *cr.mutable_sandbox_config() = pod;
      rt::CreateContainerResponse created;
      check(stub->CreateContainer(ctx().get(), cr, &created), "CreateContainer");
      rt::StartContainerRequest sr;
      sr.set_container_id(created.container_id());
      rt::StartContainerResponse started;
      check(stub->StartContainer(ctx().get(), sr, &started), "StartContainer");
      // Running = its first line is in the log.
      for (;;) {
        std::ifstream in(log_file);
        std::string line;
        if (std::getline(in, line) && line.find(" up") != std::string::npos) break;
        if (Clock::now() - t0 > 300s) throw std::runtime_error("the container wrote nothing within 300 s");
        std::this_thread::sleep_for(1ms);
      }
      auto ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      fmt::print("{:.1f}\n", ms);
      std::fflush(stdout);

      rt::RemovePodSandboxRequest rm;
      rm.set_pod_sandbox_id(ran.pod_sandbox_id());
      rt::RemovePodSandboxResponse removed;
      check(stub->RemovePodSandbox(ctx().get(), rm, &removed), "RemovePodSandbox");
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "frakti-bench-pod-start ({}): {}\n", kind, e.what());
    std::filesystem::remove_all(logs);
    return 1;
  }
  std::filesystem::remove_all(logs);
  return 0;
}
