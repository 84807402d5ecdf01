#pragma once
// One connection's TLS: an OpenSSL SSL object driven entirely from the reactor, never
// touching the socket. Ciphertext from the peer is handed in (cipher_in: copied into a
// memory BIO, so the pooled receive buffer goes back at once); ciphertext OpenSSL
// produces goes straight to the owner's output queue through a BIO of our own
// (cipher_sink), so no blocking SSL_read/SSL_write on a socket and no thread.
//
// State, changed only by handshake(), read(), shut_down() and failures inside them:
//   handshaking → established → finished (close_notify seen or sent)
//   handshaking / established → failed (a protocol error; nothing more is read or sent)
//
// Owned by one connection on one shard; only that shard's thread calls it.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

using SSL = struct ssl_st;
using SSL_CTX = struct ssl_ctx_st;
using SSL_SESSION = struct ssl_session_st;
using BIO = struct bio_st;

namespace mailwing::net {

class tls_channel {
 public:
  // Where the ciphertext goes, in order, as OpenSSL produces it.
  class cipher_sink {
   public:
    virtual void cipher_out(std::string_view bytes) = 0;

   protected:
    ~cipher_sink() = default;
  };

  enum class phase : uint8_t { handshaking, established, finished, failed };

  // `resume`: a client's earlier session to offer (nullptr: a full handshake).
  tls_channel(SSL_CTX* ctx, bool server, cipher_sink& sink, SSL_SESSION* resume = nullptr);
  ~tls_channel();
  tls_channel(const tls_channel&) = delete;
  tls_channel& operator=(const tls_channel&) = delete;

  phase state() const { return phase_; }
  // Ciphertext received from the peer.
  void cipher_in(std::string_view bytes);
  // Ciphertext received and not yet decrypted.
  size_t cipher_in_pending() const;
  // Runs the handshake as far as the input allows; its output goes to the sink.
  phase handshake();
  // Decrypts into out[0, room): the bytes decrypted; 0 when more ciphertext is needed,
  // or the phase moved to finished or failed.
  size_t read(char* out, size_t room);
  // Encrypts all of `plain` (the sink takes any amount); also after the peer's
  // close_notify. False when the channel cannot send.
  bool write(std::string_view plain);
  // Sends close_notify; true when it did now (false: already sent, or not possible).
  bool shut_down();

  // Why the channel failed ("" if it did not), for logs.
  const std::string& failure() const { return failure_; }
  // "version=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384" (for Received: lines and logs).
  std::string description() const;
  bool resumed() const;
  // A client's session, for resuming it next time (a new reference: SSL_SESSION_free it).
  // It stays resumable only if this connection ends with close_notify (shut_down):
  // OpenSSL drops sessions of connections that end otherwise.
  SSL_SESSION* session_for_resumption() const;

 private:
  void fail(const char* what, int ssl_error);

  SSL* ssl_ = nullptr;
  BIO* in_ = nullptr;  // owned by ssl_ once attached
  cipher_sink& sink_;
  phase phase_ = phase::handshaking;
  bool shut_down_ = false;
  std::string failure_;
};

}  // namespace mailwing::net
