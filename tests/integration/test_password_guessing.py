"""Password guessing over SMTP AUTH and POP3, against the real server.

Before, SMTP AUTH was an unthrottled oracle (100 parallel connections x 3 guesses: about
4,400 guesses/s, and the right one got 235), and POP3's delay was per answer, not per
address (150 parallel connections still got 148 guesses/s). Now password checks from one
client address run one at a time, each starting only after a delay that doubles with the
address's recent failures (auth/failure_table.hh), across sessions, protocols and shards;
the checks run on a pool of their own whose queue is bounded (454 4.7.0 / -ERR [SYS/TEMP]
past it).

Each test talks from its own loopback address (127.x.y.z), so that their failures do not
mix.

    meson test -C build test_password_guessing_io_uring test_password_guessing_epoll
"""

import base64
import socket
import sys
import threading
import time
import unittest

import harness
from harness import Server, SmtpClient, make_message, message_id, run_binary


def plain(login, password):
    return base64.b64encode(b"\0" + login.encode() + b"\0" + password.encode()).decode()


class Lines:
    """A raw connection from a chosen source address, read line by line."""

    def __init__(self, port, source, timeout_s=60):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s,
                                             source_address=(source, 0))
        self.buffer = b""

    def line(self):
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed; unread %r" % self.buffer)
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line.decode()

    def send(self, text):
        self.sock.sendall(text.encode() + b"\r\n")

    def smtp_reply(self):
        """The last line of a (multi-line) reply."""
        while True:
            line = self.line()
            if line[3:4] != "-":
                return line

    def closed(self, timeout_s=10):
        self.sock.settimeout(timeout_s)
        try:
            rest = self.sock.recv(4096)
        except ConnectionResetError:
            rest = b""
        return self.buffer + rest == b""

    def close(self):
        self.sock.close()


def smtp_session(port, source):
    conn = Lines(port, source)
    assert conn.smtp_reply().startswith("220 ")
    conn.send("EHLO guesser.test")
    assert conn.smtp_reply().startswith("250 ")
    return conn


def pop3_session(port, source):
    conn = Lines(port, source)
    assert conn.line().startswith("+OK")
    return conn


def guess_flood(test, connect, guess, seconds, connections):
    """`connections` threads, each reconnecting and guessing for `seconds`. Returns the
    number of guesses answered (a -ERR or 5xx that is not "try later") in that time."""
    answered = []
    stop = time.monotonic() + seconds
    lock = threading.Lock()

    def worker():
        while time.monotonic() < stop:
            try:
                conn = connect()
            except OSError:
                time.sleep(0.05)
                continue
            try:
                conn.sock.settimeout(0.5)
                while time.monotonic() < stop:
                    try:
                        reply = guess(conn)
                    except socket.timeout:
                        continue  # waiting for our turn; keep waiting until the end
                    with lock:
                        answered.append(reply)
                    break  # like a real guesser: a new connection for the next guess
            except OSError:
                pass
            finally:
                conn.close()

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    test.assertTrue(answered, "no guess was answered at all")
    return answered


class GuessingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # Plain-text passwords: each check costs microseconds, so only the throttle limits
        # the rate (the old code's 4,400 guesses/s were measured like this).
        cls.server = Server(extra={"smtp": {"max_connections_per_ip": 1000},
                                   "pop3": {"max_connections_per_ip": 1000}})

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def tearDown(self):
        self.server.assert_alive(self)

    def flood(self, protocol, source, expected):
        """100 parallel connections from `source`, each guessing once and reconnecting, for
        8 s; every answer must start with `expected`. Returns guesses answered per second."""
        seconds = 8
        smtp = protocol == "SMTP AUTH"
        port = self.server.smtp_port if smtp else self.server.pop3_port

        def guess(conn):
            if not hasattr(conn, "ready"):
                conn.ready = True
                conn.sock.settimeout(10)
                if smtp:
                    assert conn.smtp_reply().startswith("220 ")
                    conn.send("EHLO guesser.test")
                    assert conn.smtp_reply().startswith("250 ")
                    conn.send("AUTH PLAIN " + plain("alice@example.test", "guess"))
                else:
                    assert conn.line().startswith("+OK")
                    conn.send("USER bob@example.test")
                    assert conn.line() == "+OK"
                    conn.send("PASS guess")
                conn.sock.settimeout(0.5)
            return conn.smtp_reply() if smtp else conn.line()

        answered = guess_flood(self, lambda: Lines(port, source), guess, seconds, connections=100)
        rate = len(answered) / seconds
        print("\n%s, 100 parallel connections from one address: %d guesses answered in %d s "
              "(%.2f/s)" % (protocol, len(answered), seconds, rate), file=sys.stderr)
        self.assertTrue(all(a.startswith(expected) for a in answered), answered)
        return rate

    def test_parallel_smtp_guessing_is_throttled(self):
        # One at a time, 1 s, 2 s, 4 s apart: about four in 8 s. Before: ~4,400/s.
        self.assertLess(self.flood("SMTP AUTH", "127.21.0.1", "535 5.7.8"), 2.0)

    def test_parallel_pop3_guessing_is_throttled(self):
        # Before: 148/s.
        self.assertLess(self.flood("POP3 USER/PASS", "127.21.0.2", "-ERR [AUTH]"), 2.0)

    def test_mistyped_three_times_logs_in_on_the_fourth(self):
        # smtp.auth_failures_max is 5 by default; the fourth check waits 1 + 2 + 4 s.
        conn = smtp_session(self.server.smtp_port, "127.21.0.3")
        started = time.monotonic()
        for attempt in range(3):
            conn.send("AUTH PLAIN " + plain("carol@example.test", "typo%d" % attempt))
            self.assertTrue(conn.smtp_reply().startswith("535 5.7.8"))
        conn.send("AUTH PLAIN " + plain("carol@example.test", "carol-secret"))
        self.assertTrue(conn.smtp_reply().startswith("235 2.7.0"))
        self.assertGreater(time.monotonic() - started, 6.5)
        conn.send("QUIT")
        conn.close()

    def test_failures_count_across_protocols_and_connections(self):
        # A failed SMTP AUTH delays the next check from that address, a POP3 login on
        # another connection included: the right password, and still it waits its turn.
        source = "127.21.0.4"
        conn = smtp_session(self.server.smtp_port, source)
        conn.send("AUTH PLAIN " + plain("bob@example.test", "wrong"))
        self.assertTrue(conn.smtp_reply().startswith("535 "))
        conn.close()
        pop3 = pop3_session(self.server.pop3_port, source)
        pop3.send("USER bob@example.test")
        self.assertEqual(pop3.line(), "+OK")
        started = time.monotonic()
        pop3.send("PASS bob-secret")
        self.assertTrue(pop3.line().startswith("+OK maildrop has"))
        self.assertGreater(time.monotonic() - started, 0.8)
        # Another address is not slowed down by this one's failures.
        other = pop3_session(self.server.pop3_port, "127.21.0.5")
        other.send("USER carol@example.test")
        self.assertEqual(other.line(), "+OK")
        started = time.monotonic()
        other.send("PASS carol-secret")
        self.assertTrue(other.line().startswith("+OK maildrop has"))
        self.assertLess(time.monotonic() - started, 0.8)
        pop3.close()
        other.close()


class FailureLimitTest(unittest.TestCase):
    def test_auth_failures_max_ends_the_session(self):
        server = Server(self, extra={"smtp": {"auth_failures_max": 2},
                                     "pop3": {"auth_failures_max": 2}})
        conn = smtp_session(server.smtp_port, "127.22.0.1")
        conn.send("AUTH PLAIN " + plain("alice@example.test", "wrong"))
        self.assertTrue(conn.smtp_reply().startswith("535 5.7.8"))
        conn.send("AUTH LOGIN " + base64.b64encode(b"alice@example.test").decode())
        self.assertEqual(conn.smtp_reply(), "334 UGFzc3dvcmQ6")
        conn.send(base64.b64encode(b"wrong again").decode())
        self.assertTrue(conn.smtp_reply().startswith("421 4.7.0 "))
        self.assertTrue(conn.closed())
        conn.close()

        pop3 = pop3_session(server.pop3_port, "127.22.0.2")
        pop3.send("USER alice@example.test")
        pop3.line()
        pop3.send("PASS wrong")
        self.assertEqual(pop3.line(), "-ERR [AUTH] invalid user name or password")
        pop3.send("AUTH PLAIN " + plain("alice@example.test", "wrong"))
        self.assertEqual(pop3.line(), "-ERR [AUTH] too many failed logins")
        self.assertTrue(pop3.closed())
        pop3.close()
        server.assert_alive(self)


class CheckPoolTest(unittest.TestCase):
    def test_a_full_queue_says_try_later_and_mail_flows(self):
        hashed = run_binary(["hash-password", "dave-secret"]).stdout.strip()
        self.assertTrue(hashed.startswith("$argon2id$"), hashed)
        users = harness.DEFAULT_USERS + [{"address": "dave@example.test", "password": hashed}]
        # Two shards: one check thread, 16 checks queued at most. With an argon2id user
        # every check costs one argon2id verification (tens to hundreds of ms).
        server = Server(self, users=users, shards=2)
        smtp_sources = ["127.23.0.%d" % i for i in range(1, 41)]
        pop3_sources = ["127.23.1.%d" % i for i in range(1, 21)]
        smtp = [smtp_session(server.smtp_port, source) for source in smtp_sources]
        pop3 = [pop3_session(server.pop3_port, source) for source in pop3_sources]
        for conn in smtp:
            conn.sock.sendall(("AUTH PLAIN %s\r\n" % plain("dave@example.test", "guess")).encode())
        for conn in pop3:
            conn.sock.sendall(b"USER dave@example.test\r\nPASS guess\r\n")

        # Meanwhile mail goes through: the checks are not on any thread mail needs.
        started = time.monotonic()
        with SmtpClient(server.smtp_port) as client:
            client.expect("EHLO mail.test", 250)
            reply = client.send_message("s@client.test", ["alice@example.test"],
                                        make_message("during-the-flood"))
        mail_s = time.monotonic() - started
        self.assertEqual(reply.code, 250)

        smtp_replies = [conn.smtp_reply() for conn in smtp]
        pop3_replies = []
        for conn in pop3:
            self.assertEqual(conn.line(), "+OK")
            pop3_replies.append(conn.line())
        print("\n60 logins at once: SMTP %s; POP3 %s; a message meanwhile took %.2f s"
              % (summary(smtp_replies), summary(pop3_replies), mail_s), file=sys.stderr)
        refused = [r for r in smtp_replies if r.startswith("454 4.7.0 ")]
        checked = [r for r in smtp_replies if r.startswith("535 5.7.8 ")]
        self.assertEqual(len(refused) + len(checked), len(smtp_replies), smtp_replies)
        self.assertTrue(refused, "the queue never filled: %s" % smtp_replies)
        self.assertTrue(checked, smtp_replies)
        self.assertIn("Temporary authentication failure", refused[0])
        pop3_refused = [r for r in pop3_replies if r.startswith("-ERR [SYS/TEMP] ")]
        pop3_checked = [r for r in pop3_replies if r.startswith("-ERR [AUTH] ")]
        self.assertEqual(len(pop3_refused) + len(pop3_checked), len(pop3_replies), pop3_replies)
        self.assertTrue(pop3_refused, pop3_replies)
        # Mail is not queued behind the checks (generous: the ASan build, a busy machine).
        self.assertLess(mail_s, 5.0)
        # "Try later" counted no failure: the same session can try again, and the right
        # password works once the flood is over.
        conn = smtp[smtp_replies.index(refused[0])]
        conn.send("AUTH PLAIN " + plain("dave@example.test", "dave-secret"))
        self.assertTrue(conn.smtp_reply().startswith("235 "))
        for conn in smtp + pop3:
            conn.close()
        stored = harness.bodies_by_message_id(
            harness.read_log(server.data_dir + "/mailboxes/alice@example.test.log")[0])
        self.assertIn(message_id("during-the-flood"), stored)
        server.assert_alive(self)


def summary(replies):
    counts = {}
    for reply in replies:
        key = " ".join(reply.split(" ")[:2])
        counts[key] = counts.get(key, 0) + 1
    return ", ".join("%d x %s" % (n, key) for key, n in sorted(counts.items()))


if __name__ == "__main__":
    harness.main()
