#include "mailwing/net/tls_channel.hh"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cassert>
#include <cstdio>

#include "mailwing/net/tls_context.hh"

namespace mailwing::net {
namespace {

// A sink-only BIO: everything OpenSSL writes goes to the channel's cipher_sink at once.
int sink_write(BIO* bio, const char* data, size_t size, size_t* written) {
  static_cast<tls_channel::cipher_sink*>(BIO_get_data(bio))->cipher_out(std::string_view(data, size));
  *written = size;
  return 1;
}

long sink_ctrl(BIO* /*bio*/, int command, long /*number*/, void* /*pointer*/) {
  switch (command) {
    case BIO_CTRL_FLUSH: return 1;  // nothing is buffered here
    default: return 0;
  }
}

int sink_create(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

const BIO_METHOD* sink_method() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* made = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "mailwing output");
    BIO_meth_set_write_ex(made, sink_write);
    BIO_meth_set_ctrl(made, sink_ctrl);
    BIO_meth_set_create(made, sink_create);
    return made;
  }();
  return method;
}

}  // namespace

tls_channel::tls_channel(SSL_CTX* ctx, bool server, cipher_sink& sink, SSL_SESSION* resume) : sink_(sink) {
  ssl_ = SSL_new(ctx);
  in_ = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(sink_method());
  if (ssl_ == nullptr || in_ == nullptr || out == nullptr) {
    BIO_free(in_);
    BIO_free(out);
    in_ = nullptr;
    fail("SSL_new", SSL_ERROR_SSL);
    return;
  }
  // An empty input BIO means "wait for more", not end of file.
  BIO_set_mem_eof_return(in_, -1);
  BIO_set_data(out, &sink_);
  SSL_set_bio(ssl_, in_, out);
  if (server) {
    SSL_set_accept_state(ssl_);
  } else {
    SSL_set_connect_state(ssl_);
    if (resume != nullptr) SSL_set_session(ssl_, resume);
  }
}

tls_channel::~tls_channel() { SSL_free(ssl_); }

void tls_channel::cipher_in(std::string_view bytes) {
  if (phase_ == phase::failed || in_ == nullptr) return;
  BIO_write(in_, bytes.data(), static_cast<int>(bytes.size()));
}

size_t tls_channel::cipher_in_pending() const { return in_ == nullptr ? 0 : BIO_ctrl_pending(in_); }

tls_channel::phase tls_channel::handshake() {
  if (phase_ != phase::handshaking) return phase_;
  ERR_clear_error();
  int result = SSL_do_handshake(ssl_);
  if (result == 1) {
    phase_ = phase::established;
    return phase_;
  }
  int error = SSL_get_error(ssl_, result);
  if (error != SSL_ERROR_WANT_READ) fail("handshake", error);
  return phase_;
}

size_t tls_channel::read(char* out, size_t room) {
  if (phase_ != phase::established || room == 0) return 0;
  ERR_clear_error();
  size_t got = 0;
  if (SSL_read_ex(ssl_, out, room, &got) == 1) return got;
  int error = SSL_get_error(ssl_, 0);
  if (error == SSL_ERROR_WANT_READ) return 0;
  if (error == SSL_ERROR_ZERO_RETURN) {
    phase_ = phase::finished;  // the peer's close_notify: its input is over
    return 0;
  }
  fail("read", error);
  return 0;
}

bool tls_channel::write(std::string_view plain) {
  // After the peer's close_notify we may still send (TLS 1.3 §6.1; our reply to QUIT).
  if (phase_ != phase::established && phase_ != phase::finished) return false;
  while (!plain.empty()) {
    ERR_clear_error();
    size_t written = 0;
    if (SSL_write_ex(ssl_, plain.data(), plain.size(), &written) != 1) {
      fail("write", SSL_get_error(ssl_, 0));
      return false;
    }
    plain.remove_prefix(written);
  }
  return true;
}

bool tls_channel::shut_down() {
  if (shut_down_ || phase_ == phase::failed || phase_ == phase::handshaking) return false;
  shut_down_ = true;
  ERR_clear_error();
  SSL_shutdown(ssl_);
  ERR_clear_error();
  return true;
}

void tls_channel::fail(const char* what, int ssl_error) {
  phase_ = phase::failed;
  char head[64];
  std::snprintf(head, sizeof(head), "%s (SSL error %d)", what, ssl_error);
  failure_ = head;
  if (ssl_error == SSL_ERROR_SSL) failure_ += ": " + tls_error_text();
  ERR_clear_error();
}

std::string tls_channel::description() const {
  if (ssl_ == nullptr || phase_ == phase::handshaking || phase_ == phase::failed) return {};
  std::string text = "version=";
  text += SSL_get_version(ssl_);
  text += " cipher=";
  text += SSL_get_cipher_name(ssl_);
  return text;
}

bool tls_channel::resumed() const { return ssl_ != nullptr && SSL_session_reused(ssl_) == 1; }

SSL_SESSION* tls_channel::session_for_resumption() const { return ssl_ == nullptr ? nullptr : SSL_get1_session(ssl_); }

}  // namespace mailwing::net
