// Hosts whose KVM opens but cannot run our guests are named (no /dev/kvm needed).

#include <catch2/catch.hpp>
#include <filesystem>

#include "vmm/kvm/kvm_system.hpp"

using frakti::vmm::kvm::unsuitable_kvm_reason;

TEST_CASE("a PVM host's KVM is named as unsuitable; a plain KVM host is not", "[kvm]") {
  char tmpl[] = "/tmp/frakti-sysfs-XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  std::filesystem::path sysfs(tmpl);
  std::filesystem::create_directories(sysfs / "module" / "kvm_amd");
  CHECK_FALSE(unsuitable_kvm_reason(sysfs).has_value());

  std::filesystem::create_directories(sysfs / "module" / "kvm_pvm");
  auto why = unsuitable_kvm_reason(sysfs);
  REQUIRE(why.has_value());
  CHECK_THAT(*why, Catch::Contains("kvm_pvm") && Catch::Contains("KVM internal error") &&
                       Catch::Contains("tools/kvmbox"));
  std::filesystem::remove_all(sysfs);
}
