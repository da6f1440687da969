// End to end without a Linux kernel: frakti-vmm boots tiny hand-written "kernels" (ELF files
// with a few instructions at 16 MiB) and must end with the exit status the guest asked for.
// Covers the whole recipe, the devices, the vCPU threads and the stop path (the guests spin
// after their request, so the VMM has to kick them out of KVM_RUN).
#include <elf.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "tests/vmm/vm/run_vmm.hpp"

namespace {

constexpr uint64_t kEntry = 0x1000000;

// Writes a one-segment ELF64 executable holding code at kEntry; returns its path.
std::string write_kernel(const std::string& dir, const std::vector<uint8_t>& code) {
  Elf64_Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_ident[EI_VERSION] = EV_CURRENT;
  eh.e_type = ET_EXEC;
  eh.e_machine = EM_X86_64;
  eh.e_version = EV_CURRENT;
  eh.e_entry = kEntry;
  eh.e_phoff = sizeof eh;
  eh.e_ehsize = sizeof eh;
  eh.e_phentsize = sizeof(Elf64_Phdr);
  eh.e_phnum = 1;
  Elf64_Phdr ph{};
  ph.p_type = PT_LOAD;
  ph.p_offset = sizeof eh + sizeof ph;
  ph.p_vaddr = ph.p_paddr = kEntry;
  ph.p_filesz = ph.p_memsz = code.size();
  std::string path = dir + "/kernel";
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(&eh), sizeof eh);
  out.write(reinterpret_cast<const char*>(&ph), sizeof ph);
  out.write(reinterpret_cast<const char*>(code.data()), static_cast<std::streamsize>(code.size()));
  return path;
}

struct Guest {
  std::string dir;
  std::string kernel, initrd;
  explicit Guest(const std::vector<uint8_t>& code) {
    char tmpl[] = "/tmp/frakti-tiny-XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    dir = tmpl;
    kernel = write_kernel(dir, code);
    initrd = dir + "/initrd";
    std::ofstream(initrd) << "not really an initrd";
  }
  ~Guest() {
    ::unlink(kernel.c_str());
    ::unlink(initrd.c_str());
    ::rmdir(dir.c_str());
  }
  frakti::test::VmmRun run(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--kernel", kernel, "--initrd", initrd, "--memory", "64"};
    args.insert(args.end(), extra.begin(), extra.end());
    return frakti::test::run_vmm(args, std::chrono::seconds(180));
  }
};

// Instruction snippets (64-bit mode).
std::vector<uint8_t> out_byte(uint16_t port, uint8_t value) {
  return {0x66, 0xba, static_cast<uint8_t>(port), static_cast<uint8_t>(port >> 8),  // mov dx, port
          0xb0, value,                                                           // mov al, value
          0xee};                                                                 // out dx, al
}
std::vector<uint8_t> operator+(std::vector<uint8_t> a, const std::vector<uint8_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}
const std::vector<uint8_t> kSpin = {0xeb, 0xfe};  // jmp $

}  // namespace

TEST_CASE("console output, boot timer and power-off port: exit 0", "[kvm][vmm]") {
  Guest g(out_byte(0x3f8, 'h') + out_byte(0x3f8, 'i') + out_byte(0x3f8, '\n') +
          out_byte(0x1234, 1) +  // unclaimed: logged, ignored
          out_byte(0x440, 123) + out_byte(0x441, 0x50) + kSpin);
  auto r = g.run({"--cpus", "2"});  // vCPU 1 waits for a SIPI that never comes: must be kicked
  INFO("log:\n" << r.log);
  REQUIRE(r.status == 0);
  REQUIRE(r.console == "hi\n");
  REQUIRE(r.log.find("guest boot time:") != std::string::npos);
  REQUIRE(r.log.find("unclaimed port write of 1 bytes at 0x1234") != std::string::npos);
}

TEST_CASE("i8042 reset: exit 2", "[kvm][vmm]") {
  Guest g(out_byte(0x64, 0xfe) + kSpin);
  auto r = g.run();
  INFO("log:\n" << r.log);
  REQUIRE(r.status == 2);
  REQUIRE(r.log.find("guest rebooted") != std::string::npos);
}

TEST_CASE("triple fault: exit 3 with the vCPU state logged", "[kvm][vmm]") {
  Guest g({0x0f, 0x0b});  // ud2 with an empty IDT: #UD -> #GP -> #DF -> shutdown
  auto r = g.run();
  INFO("log:\n" << r.log);
  REQUIRE(r.status == 3);
  REQUIRE(r.log.find("triple fault") != std::string::npos);
  // SVM re-initialises a vCPU after a shutdown, so only the presence of the dump is checked.
  REQUIRE(r.log.find("vCPU 0 state: rip=") != std::string::npos);
}

TEST_CASE("SIGTERM stops a spinning guest: exit 0", "[kvm][vmm]") {
  Guest g(kSpin);
  // Run in the background and signal it once it is up.
  std::vector<std::string> args = {FRAKTI_VMM_BINARY, "--console", "none", "--kernel", g.kernel,
                                   "--initrd", g.initrd, "--memory", "64"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid;
  REQUIRE(posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ) == 0);
  std::this_thread::sleep_for(std::chrono::seconds(3));
  REQUIRE(kill(pid, SIGTERM) == 0);
  int ws = 0;
  auto t0 = std::chrono::steady_clock::now();
  while (waitpid(pid, &ws, WNOHANG) != pid) {
    if (std::chrono::steady_clock::now() - t0 > std::chrono::seconds(60)) {
      kill(pid, SIGKILL);
      waitpid(pid, &ws, 0);
      FAIL("frakti-vmm did not stop on SIGTERM");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  REQUIRE(WIFEXITED(ws));
  REQUIRE(WEXITSTATUS(ws) == 0);
}
