#pragma once
// TLS material and settings shared by every connection (OpenSSL 3): one SSL_CTX built
// from a certificate chain and a private key, and the holder through which SIGHUP swaps
// in a new one while sessions that already started keep theirs (an SSL holds a reference
// to the SSL_CTX it came from).
//
// Defaults a modern MX wants: TLS 1.2 or 1.3 (min_version), OpenSSL 3's default cipher
// suites (AEAD only at "SECLEVEL 2" for 1.3; ECDHE forward secrecy for 1.2), the server's
// cipher preference, no renegotiation, no compression, stateless session tickets for
// resumption, and buffers released while a connection is idle (10,000 idle TLS sessions
// must not each pin 34 KB of record buffers).
//
// tls_context is immutable once built: any thread may use it. tls_context_holder is
// read by every shard (current) and written by the main thread (replace).

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>

using SSL_CTX = struct ssl_ctx_st;

namespace mailwing::net {

struct tls_settings {
  std::string certificate_path;  // PEM: the certificate, then any intermediates
  std::string private_key_path;  // PEM
  int min_version = 0x0303;      // TLS1_2_VERSION or TLS1_3_VERSION
  bool server = true;            // false: a client context (the load generators)
};

class tls_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class tls_context {
 public:
  // Throws tls_error with one line naming the file and OpenSSL's reason.
  static std::shared_ptr<tls_context> load(const tls_settings& settings);
  // A client context: no certificate, verification off (the load generators measure
  // servers that often run self-signed certificates).
  static std::shared_ptr<tls_context> client(int min_version, bool session_tickets);
  ~tls_context();
  tls_context(const tls_context&) = delete;
  tls_context& operator=(const tls_context&) = delete;

  SSL_CTX* native() const { return ctx_; }
  // "SHA256 Fingerprint" of the leaf certificate, "AB:CD:..."; empty for a client.
  const std::string& fingerprint_sha256() const { return fingerprint_sha256_; }

 private:
  explicit tls_context(SSL_CTX* ctx) : ctx_(ctx) {}
  SSL_CTX* ctx_;
  std::string fingerprint_sha256_;
};

class tls_context_holder {
 public:
  std::shared_ptr<tls_context> current() const { return current_.load(std::memory_order_acquire); }
  void replace(std::shared_ptr<tls_context> next) { current_.store(std::move(next), std::memory_order_release); }

 private:
  std::atomic<std::shared_ptr<tls_context>> current_;
};

// The self-signed certificate of the embedded default: <directory>/cert.pem and
// <directory>/key.pem (EC P-256, CN and subjectAltName = hostname, valid ten years),
// created with OpenSSL on first use and reused afterwards. Returns the settings that
// load them. Throws tls_error.
tls_settings ensure_self_signed(const std::string& directory, const std::string& hostname);

// Whether this kernel can take TLS records over (the "tls" TCP upper-layer protocol, kTLS).
bool kernel_tls_available();

// OpenSSL's error queue as one line (and cleared), for logs.
std::string tls_error_text();

}  // namespace mailwing::net
