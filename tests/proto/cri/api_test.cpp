// proto/cri/api.proto must stay wire-compatible with upstream k8s.io/cri-api runtime.v1: these
// checks pin names, numbers and types that a typo would break, through the descriptors and
// through encoded bytes.

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "proto/cri/api.grpc.pb.h"
#include "proto/cri/api.pb.h"

namespace v1 = runtime::v1;
using google::protobuf::Descriptor;
using google::protobuf::DescriptorPool;
using google::protobuf::FieldDescriptor;

namespace {

const google::protobuf::FileDescriptor* file() {
  return v1::PodSandboxConfig::descriptor()->file();
}

std::vector<std::string> methods(const char* service) {
  const auto* s = file()->FindServiceByName(service);
  REQUIRE(s);
  std::vector<std::string> out;
  for (int i = 0; i < s->method_count(); ++i) out.push_back(s->method(i)->name());
  return out;
}

struct FieldCase {
  const char* message;
  const char* field;
  int number;
  FieldDescriptor::Type type;
  const char* type_name;  // message or enum type for TYPE_MESSAGE / TYPE_ENUM, else ""
  bool repeated;
};

}  // namespace

TEST_CASE("package and services are upstream's", "[cri][proto]") {
  CHECK(file()->package() == "runtime.v1");
  CHECK(file()->syntax() == google::protobuf::FileDescriptor::SYNTAX_PROTO3);
  CHECK(file()->service_count() == 2);
  // gRPC routes by "/package.Service/Method": these are the paths kubelet and crictl call.
  CHECK(std::string(v1::RuntimeService::service_full_name()) == "runtime.v1.RuntimeService");
  CHECK(std::string(v1::ImageService::service_full_name()) == "runtime.v1.ImageService");
}

TEST_CASE("RuntimeService lists upstream's RPCs in order", "[cri][proto]") {
  std::vector<std::string> want = {"Version",
                                   "RunPodSandbox",
                                   "StopPodSandbox",
                                   "RemovePodSandbox",
                                   "PodSandboxStatus",
                                   "ListPodSandbox",
                                   "CreateContainer",
                                   "StartContainer",
                                   "StopContainer",
                                   "RemoveContainer",
                                   "ListContainers",
                                   "ContainerStatus",
                                   "UpdateContainerResources",
                                   "ReopenContainerLog",
                                   "ExecSync",
                                   "Exec",
                                   "Attach",
                                   "PortForward",
                                   "ContainerStats",
                                   "ListContainerStats",
                                   "PodSandboxStats",
                                   "ListPodSandboxStats",
                                   "UpdateRuntimeConfig",
                                   "Status",
                                   "CheckpointContainer",
                                   "GetContainerEvents",
                                   "ListMetricDescriptors",
                                   "ListPodSandboxMetrics",
                                   "RuntimeConfig",
                                   "UpdatePodSandboxResources"};
  CHECK(methods("RuntimeService") == want);

  const auto* s = file()->FindServiceByName("RuntimeService");
  for (int i = 0; i < s->method_count(); ++i) {
    const auto* m = s->method(i);
    INFO(m->name());
    // Only GetContainerEvents streams (server side); every other call is unary.
    CHECK(m->server_streaming() == (m->name() == "GetContainerEvents"));
    CHECK_FALSE(m->client_streaming());
  }
  const auto* ev = s->FindMethodByName("GetContainerEvents");
  CHECK(ev->input_type()->name() == "GetEventsRequest");
  CHECK(ev->output_type()->name() == "ContainerEventResponse");
  CHECK(s->FindMethodByName("Status")->output_type()->name() == "StatusResponse");
  CHECK(s->FindMethodByName("RuntimeConfig")->output_type()->name() == "RuntimeConfigResponse");
}

TEST_CASE("ImageService lists upstream's RPCs in order", "[cri][proto]") {
  CHECK(methods("ImageService") == std::vector<std::string>{"ListImages", "ImageStatus",
                                                            "PullImage", "RemoveImage",
                                                            "ImageFsInfo"});
  const auto* s = file()->FindServiceByName("ImageService");
  CHECK(s->FindMethodByName("ImageFsInfo")->input_type()->name() == "ImageFsInfoRequest");
}

TEST_CASE("field numbers, types and labels match upstream", "[cri][proto]") {
  using T = FieldDescriptor;
  const std::vector<FieldCase> cases = {
      {"PodSandboxConfig", "metadata", 1, T::TYPE_MESSAGE, "PodSandboxMetadata", false},
      {"PodSandboxConfig", "log_directory", 3, T::TYPE_STRING, "", false},
      {"PodSandboxConfig", "linux", 8, T::TYPE_MESSAGE, "LinuxPodSandboxConfig", false},
      {"PodSandboxConfig", "windows", 9, T::TYPE_MESSAGE, "WindowsPodSandboxConfig", false},
      {"PodSandboxMetadata", "namespace", 3, T::TYPE_STRING, "", false},
      {"PodSandboxMetadata", "attempt", 4, T::TYPE_UINT32, "", false},
      {"LinuxPodSandboxConfig", "overhead", 4, T::TYPE_MESSAGE, "LinuxContainerResources", false},
      {"LinuxPodSandboxConfig", "resources", 5, T::TYPE_MESSAGE, "LinuxContainerResources", false},
      {"LinuxSandboxSecurityContext", "run_as_group", 8, T::TYPE_MESSAGE, "Int64Value", false},
      {"LinuxSandboxSecurityContext", "seccomp", 9, T::TYPE_MESSAGE, "SecurityProfile", false},
      {"LinuxSandboxSecurityContext", "supplemental_groups_policy", 11, T::TYPE_ENUM,
       "SupplementalGroupsPolicy", false},
      {"NamespaceOption", "target_id", 4, T::TYPE_STRING, "", false},
      {"NamespaceOption", "userns_options", 5, T::TYPE_MESSAGE, "UserNamespace", false},
      {"Namespace", "options", 2, T::TYPE_MESSAGE, "NamespaceOption", false},
      {"Mount", "uidMappings", 6, T::TYPE_MESSAGE, "IDMapping", true},
      {"Mount", "recursive_read_only", 8, T::TYPE_BOOL, "", false},
      {"Mount", "image", 9, T::TYPE_MESSAGE, "ImageSpec", false},
      {"ImageSpec", "user_specified_image", 18, T::TYPE_STRING, "", false},
      {"ImageSpec", "runtime_handler", 19, T::TYPE_STRING, "", false},
      {"LinuxContainerResources", "hugepage_limits", 8, T::TYPE_MESSAGE, "HugepageLimit", true},
      {"LinuxContainerResources", "memory_swap_limit_in_bytes", 10, T::TYPE_INT64, "", false},
      {"LinuxContainerSecurityContext", "run_as_username", 6, T::TYPE_STRING, "", false},
      {"LinuxContainerSecurityContext", "no_new_privs", 11, T::TYPE_BOOL, "", false},
      {"LinuxContainerSecurityContext", "run_as_group", 12, T::TYPE_MESSAGE, "Int64Value", false},
      {"LinuxContainerSecurityContext", "supplemental_groups_policy", 17, T::TYPE_ENUM,
       "SupplementalGroupsPolicy", false},
      {"ContainerConfig", "envs", 6, T::TYPE_MESSAGE, "KeyValue", true},
      {"ContainerConfig", "log_path", 11, T::TYPE_STRING, "", false},
      {"ContainerConfig", "linux", 15, T::TYPE_MESSAGE, "LinuxContainerConfig", false},
      {"ContainerConfig", "CDI_devices", 17, T::TYPE_MESSAGE, "CDIDevice", true},
      {"CreateContainerRequest", "sandbox_config", 3, T::TYPE_MESSAGE, "PodSandboxConfig", false},
      {"StopContainerRequest", "timeout", 2, T::TYPE_INT64, "", false},
      {"ContainerStatus", "exit_code", 7, T::TYPE_INT32, "", false},
      {"ContainerStatus", "reason", 10, T::TYPE_STRING, "", false},
      {"ContainerStatus", "resources", 16, T::TYPE_MESSAGE, "ContainerResources", false},
      {"ContainerStatus", "image_id", 17, T::TYPE_STRING, "", false},
      {"ContainerStatus", "user", 18, T::TYPE_MESSAGE, "ContainerUser", false},
      {"ContainerStatus", "image_source", 19, T::TYPE_STRING, "", false},
      {"Container", "image_id", 10, T::TYPE_STRING, "", false},
      {"PodSandboxStatusResponse", "containers_statuses", 3, T::TYPE_MESSAGE, "ContainerStatus",
       true},
      {"PodSandboxStatusResponse", "timestamp", 4, T::TYPE_INT64, "", false},
      {"ExecSyncResponse", "stdout", 1, T::TYPE_BYTES, "", false},
      {"ExecSyncResponse", "exit_code", 3, T::TYPE_INT32, "", false},
      {"ExecRequest", "stderr", 6, T::TYPE_BOOL, "", false},
      {"AttachRequest", "stdout", 4, T::TYPE_BOOL, "", false},
      {"Image", "uid", 5, T::TYPE_MESSAGE, "Int64Value", false},
      {"Image", "pinned", 8, T::TYPE_BOOL, "", false},
      {"ImageStatusResponse", "info", 2, T::TYPE_MESSAGE, "InfoEntry", true},
      {"AuthConfig", "registry_token", 6, T::TYPE_STRING, "", false},
      {"FilesystemUsage", "inodes_used", 4, T::TYPE_MESSAGE, "UInt64Value", false},
      {"ImageFsInfoResponse", "container_filesystems", 2, T::TYPE_MESSAGE, "FilesystemUsage", true},
      {"ContainerStats", "swap", 5, T::TYPE_MESSAGE, "SwapUsage", false},
      {"MemoryUsage", "major_page_faults", 7, T::TYPE_MESSAGE, "UInt64Value", false},
      {"StatusResponse", "runtime_handlers", 3, T::TYPE_MESSAGE, "RuntimeHandler", true},
      {"StatusResponse", "features", 4, T::TYPE_MESSAGE, "RuntimeFeatures", false},
      {"ContainerEventResponse", "containers_statuses", 5, T::TYPE_MESSAGE, "ContainerStatus",
       true},
      {"Metric", "value", 5, T::TYPE_MESSAGE, "UInt64Value", false},
      {"LinuxRuntimeConfiguration", "cgroup_driver", 1, T::TYPE_ENUM, "CgroupDriver", false},
      {"UpdatePodSandboxResourcesRequest", "resources", 3, T::TYPE_MESSAGE,
       "LinuxContainerResources", false},
  };
  for (const auto& c : cases) {
    INFO(c.message << "." << c.field);
    const Descriptor* m = file()->FindMessageTypeByName(c.message);
    REQUIRE(m);
    const FieldDescriptor* f = m->FindFieldByName(c.field);
    REQUIRE(f);
    CHECK(f->number() == c.number);
    CHECK(f->type() == c.type);
    CHECK(f->is_repeated() == c.repeated);
    if (f->message_type()) CHECK(f->message_type()->name() == c.type_name);
    if (f->enum_type()) CHECK(f->enum_type()->name() == c.type_name);
  }
  // Deprecated fields keep their numbers.
  CHECK(v1::LinuxSandboxSecurityContext::descriptor()
            ->FindFieldByName("seccomp_profile_path")
            ->number() == 7);
  CHECK(v1::LinuxContainerSecurityContext::descriptor()
            ->FindFieldByName("apparmor_profile")
            ->number() == 9);
  // Maps are upstream's map<string, string>.
  CHECK(v1::PodSandboxConfig::descriptor()->FindFieldByName("annotations")->is_map());
  CHECK(v1::LinuxPodSandboxConfig::descriptor()->FindFieldByName("sysctls")->is_map());
}

TEST_CASE("enum values match upstream", "[cri][proto]") {
  CHECK(v1::SANDBOX_READY == 0);
  CHECK(v1::SANDBOX_NOTREADY == 1);
  CHECK(v1::CONTAINER_CREATED == 0);
  CHECK(v1::CONTAINER_RUNNING == 1);
  CHECK(v1::CONTAINER_EXITED == 2);
  CHECK(v1::CONTAINER_UNKNOWN == 3);
  CHECK(v1::POD == 0);
  CHECK(v1::CONTAINER == 1);
  CHECK(v1::NODE == 2);
  CHECK(v1::TARGET == 3);
  CHECK(v1::PROPAGATION_BIDIRECTIONAL == 2);
  CHECK(v1::SCTP == 2);
  CHECK(v1::Strict == 1);
  CHECK(v1::SYSTEMD == 0);
  CHECK(v1::CGROUPFS == 1);
  CHECK(v1::CONTAINER_DELETED_EVENT == 3);
  CHECK(v1::GAUGE == 1);
  CHECK(v1::SecurityProfile::Localhost == 2);
}

TEST_CASE("encoded bytes carry upstream's tags", "[cri][proto]") {
  // A golden encoding checks the wire, not just the descriptor: tag = number << 3 | wire type.
  v1::ContainerConfig c;
  c.mutable_metadata()->set_name("a");                        // field 1, length-delimited
  c.mutable_linux()->mutable_resources()->set_cpu_shares(2);  // field 15 { 1 { 3: 2 } }
  std::string bytes;
  REQUIRE(c.SerializeToString(&bytes));
  const std::string want = std::string(
                               "\x0a\x03\x0a\x01"
                               "a",
                               5) +
                           std::string("\x7a\x04\x0a\x02\x18\x02", 6);
  CHECK(bytes == want);

  v1::ImageSpec s;
  s.set_user_specified_image("x");  // field 18: a two-byte tag, 18 << 3 | 2 = 146 = 0x92 0x01
  REQUIRE(s.SerializeToString(&bytes));
  CHECK(bytes == std::string("\x92\x01\x01x", 4));

  // And back: bytes written by upstream's encoding decode into the right fields.
  v1::ExecSyncResponse r;
  REQUIRE(
      r.ParseFromString(std::string("\x0a\x02hi\x12\x01"
                                    "e\x18\x07",
                                    9)));
  CHECK(r.stdout() == "hi");
  CHECK(r.stderr() == "e");
  CHECK(r.exit_code() == 7);
}
