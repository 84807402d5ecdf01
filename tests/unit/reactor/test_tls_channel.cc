// net::tls_channel against OpenSSL's own client over memory BIOs, with the ciphertext
// split at every byte boundary: the channel must not care how records fall into receive
// buffers (the way Dovecot's istream-dot test feeds one byte at a time).

#include "mailwing/net/tls_channel.hh"

#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "mailwing/net/tls_context.hh"

namespace mailwing::net {
namespace {

class collecting_sink final : public tls_channel::cipher_sink {
 public:
  void cipher_out(std::string_view bytes) override { bytes_.append(bytes); }
  std::string take() {
    std::string out;
    out.swap(bytes_);
    return out;
  }

 private:
  std::string bytes_;
};

// OpenSSL's client on two memory BIOs that the test moves bytes through by hand.
class test_client {
 public:
  explicit test_client(const tls_context& context) {
    ssl_ = SSL_new(context.native());
    BIO* in = BIO_new(BIO_s_mem());
    out_ = BIO_new(BIO_s_mem());
    in_ = in;
    BIO_set_mem_eof_return(in, -1);
    SSL_set_bio(ssl_, in, out_);
    SSL_set_connect_state(ssl_);
  }
  ~test_client() { SSL_free(ssl_); }
  test_client(const test_client&) = delete;
  test_client& operator=(const test_client&) = delete;

  bool handshake() { return SSL_do_handshake(ssl_) == 1; }
  void feed(const std::string& cipher) {
    if (!cipher.empty()) BIO_write(in_, cipher.data(), static_cast<int>(cipher.size()));
  }
  std::string drain() {
    std::string out;
    char buffer[4096];
    int got;
    while ((got = BIO_read(out_, buffer, sizeof(buffer))) > 0) out.append(buffer, static_cast<size_t>(got));
    return out;
  }
  // The client context allows partial writes, as ours does.
  void write(const std::string& plain) {
    size_t done = 0;
    while (done < plain.size()) {
      int wrote = SSL_write(ssl_, plain.data() + done, static_cast<int>(plain.size() - done));
      ASSERT_GT(wrote, 0);
      done += static_cast<size_t>(wrote);
    }
  }
  std::string read_all() {
    std::string out;
    char buffer[4096];
    int got;
    while ((got = SSL_read(ssl_, buffer, sizeof(buffer))) > 0) out.append(buffer, static_cast<size_t>(got));
    return out;
  }
  void close() { SSL_shutdown(ssl_); }

 private:
  SSL* ssl_;
  BIO* in_;
  BIO* out_;
};

std::string pattern(size_t size) {
  std::string out(size, '\0');
  for (size_t i = 0; i < size; ++i) out[i] = static_cast<char>('a' + (i * 7 + i / 13) % 26);
  return out;
}

class TlsChannel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char directory[] = "/tmp/mailwing-tls-test-XXXXXX";
    ASSERT_NE(mkdtemp(directory), nullptr);
    directory_ = new std::string(directory);
    server_ = new std::shared_ptr<tls_context>(tls_context::load(ensure_self_signed(*directory_, "mx.example.test")));
    client_ = new std::shared_ptr<tls_context>(tls_context::client(0x0303, true));
  }
  static void TearDownTestSuite() {
    std::string command = "rm -rf '" + *directory_ + "'";
    EXPECT_EQ(std::system(command.c_str()), 0);
    delete server_;
    delete client_;
    delete directory_;
  }

  // Moves ciphertext both ways, the client's in pieces of `split` bytes, until both ends
  // finished the handshake.
  static void handshake(tls_channel& server, collecting_sink& sink, test_client& client, size_t split) {
    for (int round = 0; round < 20; ++round) {
      bool client_done = client.handshake();
      std::string to_server = client.drain();
      for (size_t at = 0; at < to_server.size(); at += split) {
        server.cipher_in(std::string_view(to_server).substr(at, split));
        server.handshake();
        ASSERT_NE(server.state(), tls_channel::phase::failed) << server.failure();
      }
      client.feed(sink.take());
      if (client_done && server.state() == tls_channel::phase::established) return;
    }
    FAIL() << "no handshake after 20 rounds";
  }

  static std::string* directory_;
  static std::shared_ptr<tls_context>* server_;
  static std::shared_ptr<tls_context>* client_;
};

std::string* TlsChannel::directory_ = nullptr;
std::shared_ptr<tls_context>* TlsChannel::server_ = nullptr;
std::shared_ptr<tls_context>* TlsChannel::client_ = nullptr;

TEST_F(TlsChannel, EveryByteBoundary) {
  std::string request = pattern(40000);  // three records and a bit
  std::string response = pattern(50000);
  for (size_t split : {size_t{1}, size_t{2}, size_t{3}, size_t{5}, size_t{17}, size_t{100}, size_t{1 << 20}}) {
    SCOPED_TRACE("split " + std::to_string(split));
    collecting_sink sink;
    tls_channel server((*server_)->native(), true, sink);
    test_client client(**client_);
    handshake(server, sink, client, split);
    ASSERT_EQ(server.state(), tls_channel::phase::established);
    EXPECT_NE(server.description().find("version=TLSv1.3"), std::string::npos) << server.description();

    client.write(request);
    std::string cipher = client.drain();
    std::string got;
    char buffer[20000];
    for (size_t at = 0; at < cipher.size(); at += split) {
      server.cipher_in(std::string_view(cipher).substr(at, split));
      while (size_t bytes = server.read(buffer, sizeof(buffer))) got.append(buffer, bytes);
      ASSERT_EQ(server.state(), tls_channel::phase::established) << server.failure();
    }
    EXPECT_EQ(server.cipher_in_pending(), 0u);
    EXPECT_TRUE(got == request) << got.size() << " of " << request.size() << " bytes";
    // A client's handshake may still be sending (TLS 1.3 tickets come after it).
    client.feed(sink.take());
    ASSERT_TRUE(server.write(response));
    client.feed(sink.take());
    EXPECT_TRUE(client.read_all() == response);
  }
}

TEST_F(TlsChannel, GarbageInsteadOfAClientHello) {
  collecting_sink sink;
  tls_channel server((*server_)->native(), true, sink);
  server.cipher_in("EHLO client.example\r\n");
  EXPECT_EQ(server.handshake(), tls_channel::phase::failed);
  EXPECT_FALSE(server.failure().empty());
  char buffer[100];
  EXPECT_EQ(server.read(buffer, sizeof(buffer)), 0u);
  EXPECT_FALSE(server.write("nothing"));
}

TEST_F(TlsChannel, CloseNotifyEndsInputButNotOutput) {
  collecting_sink sink;
  tls_channel server((*server_)->native(), true, sink);
  test_client client(**client_);
  handshake(server, sink, client, 1 << 20);
  client.write("QUIT\r\n");
  client.close();
  server.cipher_in(client.drain());
  char buffer[100];
  std::string got;
  while (size_t bytes = server.read(buffer, sizeof(buffer))) got.append(buffer, bytes);
  EXPECT_EQ(got, "QUIT\r\n");
  EXPECT_EQ(server.state(), tls_channel::phase::finished);
  // The goodbye still goes out, then our close_notify, once.
  EXPECT_TRUE(server.write("221 Bye\r\n"));
  EXPECT_TRUE(server.shut_down());
  EXPECT_FALSE(server.shut_down());
  client.feed(sink.take());
  EXPECT_EQ(client.read_all(), "221 Bye\r\n");
}

TEST_F(TlsChannel, ClientResumesASession) {
  SSL_SESSION* saved = nullptr;
  for (int attempt = 0; attempt < 2; ++attempt) {
    collecting_sink server_sink;
    collecting_sink client_sink;
    tls_channel server((*server_)->native(), true, server_sink);
    tls_channel client((*client_)->native(), false, client_sink, saved);
    for (int round = 0; round < 10 && server.state() == tls_channel::phase::handshaking; ++round) {
      client.handshake();
      server.cipher_in(client_sink.take());
      server.handshake();
      client.cipher_in(server_sink.take());
    }
    client.handshake();
    ASSERT_EQ(server.state(), tls_channel::phase::established) << server.failure();
    ASSERT_EQ(client.state(), tls_channel::phase::established) << client.failure();
    // TLS 1.3 tickets arrive after the handshake: a read takes them in.
    char buffer[16];
    client.read(buffer, sizeof(buffer));
    EXPECT_EQ(server.resumed(), attempt == 1);
    if (saved != nullptr) SSL_SESSION_free(saved);
    saved = client.session_for_resumption();
    // OpenSSL forgets a session whose connection ended without close_notify.
    client.shut_down();
    ASSERT_NE(saved, nullptr);
    EXPECT_EQ(SSL_SESSION_is_resumable(saved), 1);
  }
  SSL_SESSION_free(saved);
}

}  // namespace
}  // namespace mailwing::net
