#pragma once
// Content digests ("sha256:<64 hex>") and an incremental SHA-256 over OpenSSL EVP.

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace frakti::image {

/// A validated content digest. Only sha256 is accepted: it is the only algorithm registries
/// and OCI layouts use in practice, and accepting others would mean storing unverified data.
class Digest {
 public:
  Digest() = default;
  /// Parses "sha256:<64 lower-case hex>"; throws ImageError(invalid) otherwise.
  static Digest parse(std::string_view text);
  /// Returns true when text is a well-formed digest.
  static bool valid(std::string_view text) noexcept;
  /// Builds a digest from 64 hex characters.
  static Digest from_hex(std::string_view hex) { return parse("sha256:" + std::string(hex)); }

  const std::string& str() const noexcept { return text_; }
  /// The 64 hex characters (used as file names).
  std::string_view hex() const noexcept { return std::string_view(text_).substr(7); }
  bool empty() const noexcept { return text_.empty(); }
  bool operator==(const Digest&) const = default;
  auto operator<=>(const Digest&) const = default;

 private:
  std::string text_;
};

/// Incremental SHA-256.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  void update(const void* data, size_t len);
  void update(std::string_view s) { update(s.data(), s.size()); }
  /// Finishes the hash; the object must not be updated afterwards.
  Digest finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// Digest of an in-memory buffer.
Digest sha256_of(std::string_view data);

}  // namespace frakti::image
