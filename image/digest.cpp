#include "image/digest.hpp"

#include <openssl/evp.h>

#include <fmt/format.h>

#include "image/error.hpp"

namespace frakti::image {

bool Digest::valid(std::string_view text) noexcept {
  if (text.size() != 71 || text.substr(0, 7) != "sha256:") return false;
  for (char c : text.substr(7)) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Digest Digest::parse(std::string_view text) {
  if (!valid(text)) {
    throw ImageError(ErrorKind::invalid,
                     fmt::format("invalid digest \"{}\" (expected sha256:<64 hex digits>)",
                                 text.substr(0, 100)));
  }
  Digest d;
  d.text_ = std::string(text);
  return d;
}

struct Sha256::State {
  EVP_MD_CTX* ctx = nullptr;
  ~State() { EVP_MD_CTX_free(ctx); }
};

Sha256::Sha256() : state_(std::make_unique<State>()) {
  state_->ctx = EVP_MD_CTX_new();
  if (!state_->ctx || EVP_DigestInit_ex(state_->ctx, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("sha256: OpenSSL EVP initialisation failed");
  }
}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(const void* data, size_t len) {
  if (len > 0) EVP_DigestUpdate(state_->ctx, data, len);
}

Digest Sha256::finish() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(state_->ctx, md, &n);
  static const char* hexd = "0123456789abcdef";
  std::string hex;
  hex.reserve(n * 2);
  for (unsigned i = 0; i < n; ++i) {
    hex.push_back(hexd[md[i] >> 4]);
    hex.push_back(hexd[md[i] & 15]);
  }
  return Digest::from_hex(hex);
}

Digest sha256_of(std::string_view data) {
  Sha256 h;
  h.update(data);
  return h.finish();
}

}  // namespace frakti::image
