#include <elf.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <vector>

// frakti-init runs as PID 1 of an initrd that has no dynamic loader or shared libraries.
TEST_CASE("frakti-init is a static x86-64 executable", "[initrd]") {
  std::ifstream in(FRAKTI_INIT_PATH, std::ios::binary);
  REQUIRE(in);
  Elf64_Ehdr eh{};
  REQUIRE(in.read(reinterpret_cast<char*>(&eh), sizeof eh));
  REQUIRE(std::equal(eh.e_ident, eh.e_ident + SELFMAG, ELFMAG));
  CHECK(eh.e_ident[EI_CLASS] == ELFCLASS64);
  CHECK(eh.e_machine == EM_X86_64);
  REQUIRE(eh.e_phentsize == sizeof(Elf64_Phdr));
  REQUIRE(eh.e_phnum > 0);
  in.seekg(static_cast<std::streamoff>(eh.e_phoff));
  std::vector<Elf64_Phdr> phdrs(eh.e_phnum);
  REQUIRE(in.read(reinterpret_cast<char*>(phdrs.data()),
                  static_cast<std::streamsize>(phdrs.size() * sizeof(Elf64_Phdr))));
  for (const auto& ph : phdrs) {
    CHECK(ph.p_type != PT_INTERP);
    CHECK(ph.p_type != PT_DYNAMIC);
  }
}
