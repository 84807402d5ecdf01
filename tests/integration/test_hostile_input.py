"""Hostile and broken input that must not hold a session open or go unanswered: endless
command lines, recipient probing, garbage sent to POP3, POP3 commands in the wrong state.

Before: a 600 KB line without LF got no reply at all; one SMTP session could try any
number of recipients; 5 MB of garbage got 20,458 POP3 -ERRs and no close; NOOP before a
POP3 login said "not in AUTHORIZATION state"; TOP refused line counts past 2^32.

    meson test -C build test_hostile_input_io_uring test_hostile_input_epoll
"""

import base64
import os
import socket
import time
import unittest

import harness
from harness import Server, SmtpClient, Pop3Client, make_message, dot_stuff

ALICE = "alice@example.test"


def read_line(sock, buffer, timeout_s=10):
    """(line, rest) from a socket; fails if the line does not come within timeout_s."""
    sock.settimeout(timeout_s)
    while b"\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed; unread %r" % buffer[:200])
        buffer += chunk
    line, rest = buffer.split(b"\r\n", 1)
    return line.decode(), rest


class HostileInputTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def tearDown(self):
        self.server.assert_alive(self)

    # --- lines without an end ------------------------------------------------------

    def test_smtp_endless_line_is_answered_before_it_ends(self):
        with SmtpClient(self.server.smtp_port) as client:
            client.expect("EHLO client.test", 250)
            client.send(b"NOOP " + b"x" * (600 * 1024))
            # No LF sent: the 500 comes anyway, as soon as line_bytes_max (4096) is passed.
            client.sock.settimeout(10)
            client.expect_reply(500, "5.5.2")
            client.send(b"y" * (100 * 1024) + b"\r\nNOOP\r\n")
            client.expect_reply(250)
            client.expect("MAIL FROM:<s@client.test>", 250)

    def test_sasl_response_without_end_is_answered(self):
        with SmtpClient(self.server.smtp_port) as client:
            client.expect("EHLO client.test", 250)
            client.expect("AUTH PLAIN", 334)
            client.send(base64.b64encode(os.urandom(30000)))
            client.sock.settimeout(10)
            client.expect_reply(500, "5.5.6")
            client.send(b"AAAA\r\nNOOP\r\n")
            client.expect_reply(250)

    def test_pop3_endless_line_is_answered_before_it_ends(self):
        with Pop3Client(self.server.pop3_port, timeout_s=10) as client:
            client.send(b"USER " + b"x" * (600 * 1024))
            self.assertEqual(client.status(), "-ERR line too long")
            client.send(b"x" * 5000 + b"\r\nCAPA\r\n")
            self.assertTrue(client.status().startswith("+OK"))
            self.assertIn(b"USER", client.body())

    # --- error caps ----------------------------------------------------------------

    def test_pop3_garbage_is_cut_off(self):
        garbage = bytes(random_bytes(5 << 20))
        sock = socket.create_connection(("127.0.0.1", self.server.pop3_port), timeout=30)
        try:
            line, rest = read_line(sock, b"")
            self.assertTrue(line.startswith("+OK"))
            sent = 0
            try:
                while sent < len(garbage):
                    sent += sock.send(garbage[sent:sent + 65536])
            except (BrokenPipeError, ConnectionResetError):
                pass
            received = rest
            sock.settimeout(30)
            try:
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    received += chunk
            except ConnectionResetError:
                pass
        finally:
            sock.close()
        replies = received.split(b"\r\n")
        errors = [r for r in replies if r.startswith(b"-ERR")]
        self.assertLessEqual(len(errors), 20, "%d -ERRs for 5 MB of garbage" % len(errors))
        self.assertEqual(errors[-1], b"-ERR too many errors, closing connection")

    def test_recipient_probing_ends_the_session(self):
        with SmtpClient(self.server.smtp_port) as client:
            client.expect("EHLO prober.test", 250)
            client.expect("MAIL FROM:<probe@client.test>", 250)
            client.expect("RCPT TO:<%s>" % ALICE, 250)
            for n in range(19):
                client.expect("RCPT TO:<guess%d@example.test>" % n, 550, "5.1.1")
            client.send("RCPT TO:<guess19@example.test>\r\nRCPT TO:<bob@example.test>\r\n")
            client.expect_reply(550, "5.1.1")
            client.expect_reply(421, "4.7.0")
            self.assertEqual(client.wait_closed(), b"")

    def test_a_few_unknown_recipients_are_fine(self):
        with SmtpClient(self.server.smtp_port) as client:
            client.expect("EHLO lister.test", 250)
            client.expect("MAIL FROM:<list@client.test>", 250)
            for n in range(5):
                client.expect("RCPT TO:<gone%d@example.test>" % n, 550, "5.1.1")
            client.expect("RCPT TO:<%s>" % ALICE, 250)
            client.expect("DATA", 354)
            client.send(dot_stuff(make_message("few-unknown")))
            client.expect_reply(250)

    # --- POP3 states and TOP ---------------------------------------------------------

    def test_pop3_transaction_commands_before_login(self):
        with Pop3Client(self.server.pop3_port) as client:
            for command in ("NOOP", "STAT", "LIST", "RETR 1", "DELE 1", "RSET", "TOP 1 1"):
                reply = client.command(command)
                self.assertEqual(reply, "-ERR not logged in: use USER and PASS, APOP or AUTH first")
            self.assertTrue(client.login("bob@example.test", "bob-secret").startswith("+OK"))
            self.assertEqual(client.command("USER bob@example.test"), "-ERR already logged in")
            self.assertEqual(client.command("NOOP"), "+OK")

    def test_pop3_top_accepts_any_line_count(self):
        with SmtpClient(self.server.smtp_port) as smtp:
            smtp.expect("EHLO client.test", 250)
            message = make_message("top-huge", body_bytes=500)
            self.assertEqual(smtp.send_message("s@client.test", ["carol@example.test"], message).code, 250)
        with Pop3Client(self.server.pop3_port) as client:
            self.assertTrue(client.login("carol@example.test", "carol-secret").startswith("+OK"))
            whole = client.retr(1)
            for count in ("4294967296", "18446744073709551616", "9" * 300):
                reply, body = client.multiline("TOP 1 " + count)
                self.assertTrue(reply.startswith("+OK"), (count, reply))
                self.assertEqual(harness.pop3_unstuff(body), whole)
            self.assertEqual(client.command("TOP 1 -1"), "-ERR invalid line count")


def random_bytes(size):
    """Printable junk with line ends now and then: many short garbage "commands"."""
    data = bytearray(os.urandom(size))
    for i in range(0, size, 37):
        data[i] = 10
    return data


if __name__ == "__main__":
    harness.main()
