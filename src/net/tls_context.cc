#include "mailwing/net/tls_context.hh"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace mailwing::net {
namespace {

template <class T, void (*Free)(T*)>
struct openssl_deleter {
  void operator()(T* pointer) const { Free(pointer); }
};
using x509_ptr = std::unique_ptr<X509, openssl_deleter<X509, X509_free>>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, openssl_deleter<EVP_PKEY, EVP_PKEY_free>>;
using bio_ptr = std::unique_ptr<BIO, openssl_deleter<BIO, BIO_free_all>>;

[[noreturn]] void fail(const std::string& what) { throw tls_error(what + ": " + tls_error_text()); }

std::string hex_fingerprint(X509* certificate) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_bytes = 0;
  if (X509_digest(certificate, EVP_sha256(), digest, &digest_bytes) != 1) return {};
  std::string text;
  char part[4];
  for (unsigned int i = 0; i < digest_bytes; ++i) {
    std::snprintf(part, sizeof(part), i == 0 ? "%02X" : ":%02X", digest[i]);
    text += part;
  }
  return text;
}

SSL_CTX* new_context(const SSL_METHOD* method, int min_version) {
  SSL_CTX* ctx = SSL_CTX_new(method);
  if (ctx == nullptr) fail("SSL_CTX_new");
  SSL_CTX_set_min_proto_version(ctx, min_version);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
  // Output is written from our own blocks, which stay put; buffers go back while idle.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE);
  return ctx;
}

}  // namespace

std::string tls_error_text() {
  std::string text;
  char line[256];
  while (unsigned long code = ERR_get_error()) {
    ERR_error_string_n(code, line, sizeof(line));
    if (!text.empty()) text += "; ";
    text += line;
  }
  return text.empty() ? "unknown OpenSSL error" : text;
}

std::shared_ptr<tls_context> tls_context::load(const tls_settings& settings) {
  ERR_clear_error();
  SSL_CTX* ctx = new_context(TLS_server_method(), settings.min_version);
  std::shared_ptr<tls_context> context(new tls_context(ctx));
  if (SSL_CTX_use_certificate_chain_file(ctx, settings.certificate_path.c_str()) != 1) {
    fail("tls.certificate " + settings.certificate_path);
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, settings.private_key_path.c_str(), SSL_FILETYPE_PEM) != 1) {
    fail("tls.private_key " + settings.private_key_path);
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    fail("tls.private_key " + settings.private_key_path + " does not match tls.certificate");
  }
  context->fingerprint_sha256_ = hex_fingerprint(SSL_CTX_get0_certificate(ctx));
  return context;
}

std::shared_ptr<tls_context> tls_context::client(int min_version, bool session_tickets) {
  ERR_clear_error();
  SSL_CTX* ctx = new_context(TLS_client_method(), min_version);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  // The client keeps sessions itself (connection::tls_session_out) to resume them.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  if (!session_tickets) SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  return std::shared_ptr<tls_context>(new tls_context(ctx));
}

tls_context::~tls_context() { SSL_CTX_free(ctx_); }

tls_settings ensure_self_signed(const std::string& directory, const std::string& hostname) {
  tls_settings settings;
  settings.certificate_path = directory + "/cert.pem";
  settings.private_key_path = directory + "/key.pem";
  struct stat info{};
  if (::stat(settings.certificate_path.c_str(), &info) == 0 && ::stat(settings.private_key_path.c_str(), &info) == 0) {
    return settings;
  }
  if (::mkdir(directory.c_str(), 0700) != 0 && errno != EEXIST) {
    throw tls_error("cannot create " + directory + ": " + std::strerror(errno));
  }
  ERR_clear_error();
  pkey_ptr key(EVP_EC_gen("P-256"));
  if (!key) fail("generating a key");
  x509_ptr certificate(X509_new());
  if (!certificate) fail("X509_new");
  X509_set_version(certificate.get(), 2);
  uint64_t serial = 0;
  RAND_bytes(reinterpret_cast<unsigned char*>(&serial), sizeof(serial));
  ASN1_INTEGER_set_uint64(X509_get_serialNumber(certificate.get()), serial >> 1);
  X509_gmtime_adj(X509_getm_notBefore(certificate.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(certificate.get()), 10L * 365 * 24 * 3600);
  X509_set_pubkey(certificate.get(), key.get());
  X509_NAME* name = X509_get_subject_name(certificate.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(hostname.c_str()),
                             -1, -1, 0);
  X509_set_issuer_name(certificate.get(), name);
  X509V3_CTX extension_context;
  X509V3_set_ctx_nodb(&extension_context);
  X509V3_set_ctx(&extension_context, certificate.get(), certificate.get(), nullptr, nullptr, 0);
  std::string alt_name = "DNS:" + hostname;
  X509_EXTENSION* extension =
      X509V3_EXT_conf_nid(nullptr, &extension_context, NID_subject_alt_name, alt_name.c_str());
  if (extension == nullptr) fail("subjectAltName " + alt_name);
  X509_add_ext(certificate.get(), extension, -1);
  X509_EXTENSION_free(extension);
  if (X509_sign(certificate.get(), key.get(), EVP_sha256()) == 0) fail("signing the certificate");

  // Written to temporary names and renamed, key first: a crash leaves no half pair that
  // a later start would take for a whole one.
  std::string key_temporary = settings.private_key_path + ".tmp";
  std::string certificate_temporary = settings.certificate_path + ".tmp";
  int key_fd = ::open(key_temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (key_fd < 0) throw tls_error("cannot create " + key_temporary + ": " + std::strerror(errno));
  bio_ptr key_out(BIO_new_fd(key_fd, BIO_CLOSE));
  if (!key_out || PEM_write_bio_PrivateKey(key_out.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1 ||
      BIO_flush(key_out.get()) != 1 || ::fsync(key_fd) != 0) {
    fail("writing " + key_temporary);
  }
  key_out.reset();
  bio_ptr certificate_out(BIO_new_file(certificate_temporary.c_str(), "w"));
  if (!certificate_out || PEM_write_bio_X509(certificate_out.get(), certificate.get()) != 1 ||
      BIO_flush(certificate_out.get()) != 1) {
    fail("writing " + certificate_temporary);
  }
  certificate_out.reset();
  if (::rename(key_temporary.c_str(), settings.private_key_path.c_str()) != 0 ||
      ::rename(certificate_temporary.c_str(), settings.certificate_path.c_str()) != 0) {
    throw tls_error("cannot rename the new certificate into " + directory + ": " + std::strerror(errno));
  }
  return settings;
}

bool kernel_tls_available() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  // The ULP can only be set on a connected socket; ENOENT (no such ULP) versus ENOTCONN
  // (it exists, the socket just is not connected) is the answer.
  int result = ::setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls"));
  int error = errno;
  ::close(fd);
  return result == 0 || error == ENOTCONN;
}

}  // namespace mailwing::net
