"""Bad, hostile and odd input over a raw socket: every case gets the right reply code, the
server never crashes, and its memory does not grow with what a client sends."""

import random
import socket
import struct
import threading
import time
import unittest

import harness
from harness import Server, SmtpClient, make_message, message_id, dot_stuff

ALICE = "alice@example.test"


def reference_unstuff(data):
    """What the server must store for DATA content `data` (which must end with the
    end-of-data sequence), written from wire/dot_unstuffer.hh's description: "." is removed
    at the start of a line that follows a real CRLF (or the start); only CRLF "." CRLF ends
    the data; a bare LF is stored as CRLF and does not start a line for dot removal; a CR
    not followed by LF is kept. Returns (stored, bytes consumed)."""
    out = bytearray()
    i = 0
    line_start = True
    while i < len(data):
        c = data[i:i + 1]
        if line_start and c == b".":
            if data[i + 1:i + 3] == b"\r\n":
                return bytes(out), i + 3
            i += 1  # the stuffed dot
            line_start = False
            continue
        line_start = False
        if c == b"\n":
            if out.endswith(b"\r") and data[i - 1:i] == b"\r":
                out += b"\n"
                line_start = True
            else:
                out += b"\r\n"
        else:
            out += c
        i += 1
    raise AssertionError("no end of data in %r" % data[-20:])


def has_dot_line(stored):
    return stored.startswith(b".") or b"\r\n." in stored


class BadInputTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def setUp(self):
        self.baseline_rss_kb = self.server.status_kb("VmRSS")

    def tearDown(self):
        self.server.assert_alive(self)

    def client(self, ehlo=True):
        client = SmtpClient(self.server.smtp_port, timeout_s=60)
        self.addCleanup(client.close)
        if ehlo:
            client.expect("EHLO client.test", 250)
        return client

    def stored(self, address, tag):
        return harness.bodies_by_message_id(self.server.messages(address)).get(message_id(tag), [])

    def assert_usable(self, client):
        client.expect("NOOP", 250)
        client.expect("RSET", 250)

    def assert_rss_bounded(self, limit_kb=24 * 1024):
        grown = self.server.status_kb("VmRSS") - self.baseline_rss_kb
        self.assertLess(grown, limit_kb, "RSS grew by %d kB" % grown)

    # --- command lines --------------------------------------------------------------

    def test_over_long_command_line(self):
        client = self.client()
        # line_bytes_max (default 4096) counts the line without its CRLF.
        client.expect("NOOP " + "x" * (4096 - 5), 250)
        client.expect("NOOP " + "x" * (4096 - 4), 500, "5.5.2")
        client.expect("NOOP " + "y" * 100000, 500, "5.5.2")
        self.assert_usable(client)
        # An over-long line inside a transaction does not end it.
        client.expect("MAIL FROM:<s@client.test>", 250)
        client.expect("RCPT TO:<" + "a" * 5000 + "@example.test>", 500, "5.5.2")
        client.expect("RCPT TO:<alice@example.test>", 250)
        client.expect("DATA", 354)
        client.send(dot_stuff(make_message("after-long-line")))
        client.expect_reply(250)
        self.assertEqual(len(self.stored(ALICE, "after-long-line")), 1)

    def test_endless_line_costs_no_memory(self):
        client = self.client()
        chunk = b"z" * (1 << 20)
        for _ in range(48):
            client.send(chunk)
        self.assert_rss_bounded()
        client.send(b"\r\n")
        client.expect_reply(500, "5.5.2")
        self.assert_usable(client)

    def test_nul_bytes_in_commands(self):
        client = self.client()
        client.send(b"NOOP\x00\r\n")
        client.expect_reply(500, "5.5.2")
        client.send(b"MAIL FROM:<a\x00b@client.test>\r\n")
        client.expect_reply(500, "5.5.2")
        client.send(b"\x00\x00\x00\r\n")
        client.expect_reply(500, "5.5.2")
        # The NUL refused MAIL did not open a transaction.
        client.expect("RCPT TO:<alice@example.test>", 503, "5.5.1")
        self.assert_usable(client)

    def test_binary_garbage_is_cut_off(self):
        client = self.client(ehlo=False)
        rng = random.Random(5)
        garbage = bytes(rng.randrange(256) for _ in range(200000))
        try:
            client.send(garbage)
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed before all of it was sent: just what should happen
        output = client.wait_closed()
        self.assertTrue(output.endswith(b"\r\n"), output[-200:])
        last = output.rstrip(b"\r\n").split(b"\r\n")[-1]
        self.assertTrue(last.startswith(b"421 4.7.0 "), output[-300:])
        for line in output.rstrip(b"\r\n").split(b"\r\n")[:-1]:
            self.assertTrue(line[:3] in (b"500", b"501", b"502", b"503", b"504", b"250"), line)
        self.assert_rss_bounded()

    def test_unknown_commands(self):
        client = self.client()
        client.expect("FOO", 500, "5.5.1")
        client.expect("XYZZY bar baz", 500, "5.5.1")
        client.expect("MAILFROM:<a@b.test>", 500, "5.5.1")
        client.expect("", 500, "5.5.2")
        client.expect("EXPN staff", 502, "5.5.1")
        client.expect("STARTTLS", 502, "5.5.1")
        client.expect("BDAT 10 LAST", 502, "5.5.1")
        client.expect("VRFY alice", 252)
        client.expect("HELP", 214)
        client.expect("noop", 250)  # verbs are case-insensitive
        self.assert_usable(client)

    def test_bad_sequence(self):
        client = self.client(ehlo=False)
        client.expect("MAIL FROM:<s@client.test>", 503, "5.5.1")
        client.expect("RCPT TO:<alice@example.test>", 503, "5.5.1")
        client.expect("DATA", 503, "5.5.1")
        client.expect("HELO client.test", 250)
        client.expect("AUTH PLAIN", 503, "5.5.1")  # AUTH needs EHLO
        client.expect("EHLO client.test", 250)
        client.expect("RCPT TO:<alice@example.test>", 503, "5.5.1")
        client.expect("MAIL FROM:<s@client.test>", 250)
        client.expect("MAIL FROM:<s@client.test>", 503, "5.5.1")
        client.expect("AUTH PLAIN", 503, "5.5.1")
        client.expect("DATA", 554, "5.5.1")  # no valid recipients
        client.expect("RCPT TO:<nobody@example.test>", 550, "5.1.1")
        client.expect("DATA", 554, "5.5.1")
        client.expect("RSET", 250)
        client.expect("DATA", 503, "5.5.1")
        # EHLO ends a transaction too (RFC 5321 §4.1.4).
        client.expect("MAIL FROM:<s@client.test>", 250)
        client.expect("EHLO client.test", 250)
        client.expect("RCPT TO:<alice@example.test>", 503, "5.5.1")

    def test_syntax_errors(self):
        client = self.client(ehlo=False)
        client.expect("HELO", 501, "5.5.4")
        client.expect("EHLO", 501, "5.5.4")
        client.expect("EHLO client.test", 250)
        client.expect("MAIL FROM alice@client.test", 501, "5.5.4")
        client.expect("MAIL FROM:alice@client.test", 501, "5.5.4")
        client.expect("MAIL FROM:<alice@client.test", 501, "5.5.4")
        client.expect("MAIL TO:<alice@client.test>", 501, "5.5.4")
        client.expect("MAIL FROM:<not an address>", 501, "5.1.7")
        client.expect("MAIL FROM:<s@client.test> FOO=bar", 555, "5.5.4")
        client.expect("MAIL FROM:<s@client.test> SIZE=abc", 501, "5.5.4")
        client.expect("MAIL FROM:<s@client.test> BODY=9BIT", 501, "5.5.4")
        client.expect("MAIL FROM:<s@client.test>", 250)
        client.expect("RCPT TO:", 501, "5.5.4")
        client.expect("RCPT TO alice@example.test", 501, "5.5.4")
        client.expect("RCPT TO:<alice@@example.test>", 501, "5.1.3")
        client.expect("RCPT TO:<alice@example.test> NOTIFY=NEVER X=Y", 555)
        client.expect("DATA now", 501, "5.5.4")
        client.expect("RSET please", 501, "5.5.4")
        client.expect("RSET", 250)
        client.expect("AUTH", 501, "5.5.4")
        client.expect("AUTH CRAM-MD5", 504, "5.5.4")
        client.expect("AUTH PLAIN !!!notbase64", 501, "5.5.2")
        client.expect("AUTH LOGIN", 334, "VXNlcm5hbWU6")
        client.expect("*", 501)  # the client cancels
        self.assert_usable(client)

    # --- sizes and recipients ----------------------------------------------------------

    def test_declared_size_over_limit(self):
        client = self.client()
        client.expect("MAIL FROM:<s@client.test> SIZE=52428801", 552, "5.3.4")
        # Refused at once, no transaction open; a fitting size is fine.
        client.expect("RCPT TO:<alice@example.test>", 503)
        client.expect("MAIL FROM:<s@client.test> SIZE=18446744073709551615", 552, "5.3.4")
        client.expect("MAIL FROM:<s@client.test> SIZE=52428800", 250)

    def test_recipient_rules(self):
        client = self.client()
        client.expect("MAIL FROM:<s@client.test>", 250)
        client.expect("RCPT TO:<x@elsewhere.test>", 550, "5.7.1")
        client.expect("RCPT TO:<alice@example.test.evil.test>", 550, "5.7.1")
        client.expect("RCPT TO:<alice@[127.0.0.1]>", 550, "5.7.1")
        client.expect("RCPT TO:<nobody@example.test>", 550, "5.1.1")
        client.expect("RCPT TO:<+tag@example.test>", 550, "5.1.1")
        client.expect("RCPT TO:<ALICE+Tag@Example.TEST>", 250)
        client.expect("RCPT TO:<bob+a+b@example.test>", 250)
        client.expect("RCPT TO:<\"carol\"@example.test>", 250)
        client.expect("RCPT TO:<@relay.test:alice@example.test>", 250)  # source route ignored
        client.expect("DATA", 354)
        message = make_message("recipient-rules")
        client.send(dot_stuff(message))
        client.expect_reply(250)
        # alice is named twice but stores it once.
        self.assertEqual(self.stored(ALICE, "recipient-rules"), [message])
        self.assertEqual(self.stored("bob@example.test", "recipient-rules"), [message])
        self.assertEqual(self.stored("carol@example.test", "recipient-rules"), [message])

    def test_postmaster(self):
        client = self.client()
        for n, recipient in enumerate(["<postmaster@example.test>", "<POSTMASTER@Example.Test>",
                                       "<postmaster>", "<Postmaster>", "<postmaster@catchall.test>"]):
            tag = "postmaster-%d" % n
            client.expect("MAIL FROM:<>", 250)
            client.expect("RCPT TO:" + recipient, 250)
            client.expect("DATA", 354)
            client.send(dot_stuff(make_message(tag)))
            client.expect_reply(250)
            # The first configured user is the postmaster.
            self.assertEqual(len(self.stored(ALICE, tag)), 1, recipient)
            self.assertEqual(self.stored("catch@catchall.test", tag), [])

    def test_catch_all(self):
        client = self.client()
        client.expect("MAIL FROM:<s@client.test>", 250)
        client.expect("RCPT TO:<anyone@catchall.test>", 250)
        client.expect("RCPT TO:<anyone+x@CATCHALL.test>", 250)
        client.expect("RCPT TO:<nobody@example.test>", 550, "5.1.1")
        client.expect("DATA", 354)
        message = make_message("catch-all")
        client.send(dot_stuff(message))
        client.expect_reply(250)
        self.assertEqual(self.stored("catch@catchall.test", "catch-all"), [message])

    # --- DATA ---------------------------------------------------------------------

    def test_client_vanishes_mid_data(self):
        for how in ("close", "reset"):
            tag = "vanished-" + how
            client = self.client()
            client.expect("MAIL FROM:<s@client.test>", 250)
            client.expect("RCPT TO:<alice@example.test>", 250)
            client.expect("DATA", 354)
            message = make_message(tag, body_bytes=3 << 20)
            client.send(message[:len(message) // 2])
            if how == "reset":
                client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()
        # The server is fine and stored nothing of either.
        client = self.client()
        self.assertEqual(client.send_message("s@client.test", [ALICE], make_message("after-vanish")).code, 250)
        self.assertEqual(self.stored(ALICE, "vanished-close"), [])
        self.assertEqual(self.stored(ALICE, "vanished-reset"), [])
        self.assertEqual(len(self.stored(ALICE, "after-vanish")), 1)

    def test_smtp_smuggling(self):
        # "\n.\n", "\n.\r\n" and "\r\n.\n" must not end the data: otherwise the lines after
        # them would be a second, smuggled transaction (to bob).
        client = self.client()
        client.expect("MAIL FROM:<s@client.test>", 250)
        client.expect("RCPT TO:<alice@example.test>", 250)
        client.expect("DATA", 354)
        content = (b"Message-ID: " + message_id("smuggling").encode() + b"\r\n\r\n"
                   b"line1\n.\nMAIL FROM:<evil@client.test>\nRCPT TO:<bob@example.test>\nDATA\n"
                   b"smuggled-1\n.\r\nMAIL FROM:<evil@client.test>\r\nRCPT TO:<bob@example.test>\r\n"
                   b"DATA\r\nsmuggled-2\r\n.\nMAIL FROM:<evil@client.test>\r\n"
                   b"RCPT TO:<bob@example.test>\r\nDATA\r\nsmuggled-3\r.\r\nlast\r\n.\r\n")
        client.send(content)
        client.expect_reply(250, "queued as")
        # Exactly one reply: nothing else was taken as a command.
        client.expect("NOOP", 250)
        self.assertEqual(self.stored("bob@example.test", "smuggling"), [])
        self.assertEqual(
            [r for r in self.server.messages("bob@example.test") if b"evil@client.test" in r.payload], [])
        bodies = self.stored(ALICE, "smuggling")
        self.assertEqual(len(bodies), 1)
        expected, consumed = reference_unstuff(content)
        self.assertEqual(consumed, len(content))
        self.assertEqual(bodies[0], expected)
        self.assertIn(b"\r\nsmuggled-3\r.\r\nlast\r\n", bodies[0])

    def test_dot_unstuffing_matches_reference(self):
        # Random content full of CR, LF and dots, split at random points; every stored body
        # must be what the reference model says.
        rng = random.Random(11)
        tokens = [b"\r\n", b"\n", b"\r", b".", b"..", b"x", b"hello ", b"\r\n.", b"\n.", b"\r\n..",
                  b".\r", b"\r\r\n", b"y" * 70]
        client = self.client()
        sent = []
        for n in range(60):
            while True:
                body = b"".join(rng.choice(tokens) for _ in range(rng.randint(0, 400)))
                content = b"Message-ID: " + message_id("fuzz-%d" % n).encode() + b"\r\n\r\n" + body
                content += b"\r\n.\r\n"
                expected, consumed = reference_unstuff(content)
                if consumed == len(content):
                    break
            client.expect("MAIL FROM:<s@client.test>", 250)
            client.expect("RCPT TO:<carol@example.test>", 250)
            client.expect("DATA", 354)
            at = 0
            while at < len(content):
                step = rng.choice([1, 2, 3, 7, 64, 65, 1000])
                client.send(content[at:at + step])
                at += step
            client.expect_reply(250)
            sent.append(expected)
        stored = [r for r in self.server.messages("carol@example.test")
                  if b"@mailwing.test>" in r.body[:60] and b"fuzz-" in r.body[:60]]
        self.assertEqual(len(stored), len(sent))
        for record, expected in zip(stored, sent):
            self.assertEqual(record.body, expected)
            self.assertEqual(bool(record.flags & harness.FLAG_HAS_DOT_LINE), has_dot_line(expected),
                             expected)

    def test_empty_message(self):
        client = self.client()
        client.expect("MAIL FROM:<s@client.test>", 250)
        client.expect("RCPT TO:<bob+empty@example.test>", 250)
        client.expect("DATA", 354)
        count = len(self.server.messages("bob@example.test"))
        client.expect(".", 250)
        records = self.server.messages("bob@example.test")
        self.assertEqual(len(records), count + 1)
        self.assertEqual(records[-1].body, b"")

    # --- timing and framing -----------------------------------------------------------

    def test_slow_client_one_byte_at_a_time(self):
        sock = self.server.connect_smtp(timeout_s=60)
        self.addCleanup(sock.close)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client = SmtpClient.__new__(SmtpClient)
        client.sock, client.buffer = sock, b""
        client.expect_reply(220)
        message = make_message("one-byte", body_bytes=300, dot_lines=True)

        def trickle(data):
            for i in range(len(data)):
                sock.send(data[i:i + 1])
                time.sleep(0.0005)

        for line, code in [(b"EHLO slow.test\r\n", 250), (b"MAIL FROM:<s@client.test>\r\n", 250),
                           (b"RCPT TO:<alice@example.test>\r\n", 250), (b"DATA\r\n", 354),
                           (dot_stuff(message), 250), (b"QUIT\r\n", 221)]:
            trickle(line)
            client.expect_reply(code)
        self.assertEqual(self.stored(ALICE, "one-byte"), [message])

    def test_pipelined_transaction_in_one_send(self):
        client = self.client(ehlo=False)
        message = make_message("pipelined-one", dot_lines=True)
        client.send(b"EHLO client.test\r\nMAIL FROM:<s@client.test>\r\nRCPT TO:<alice@example.test>\r\n"
                    b"RCPT TO:<nobody@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"
                    + dot_stuff(message) + b"QUIT\r\n")
        client.expect_reply(250)
        client.expect_reply(250, "2.1.0")
        client.expect_reply(250, "2.1.5")
        client.expect_reply(550, "5.1.1")
        client.expect_reply(250, "2.1.5")
        client.expect_reply(354)
        client.expect_reply(250, "queued as")
        client.expect_reply(221)
        self.assertEqual(client.wait_closed(), b"")
        self.assertEqual(self.stored(ALICE, "pipelined-one"), [message])
        self.assertEqual(self.stored("bob@example.test", "pipelined-one"), [message])

    def test_several_messages_in_one_send(self):
        client = self.client()
        messages = [make_message("pipelined-%d" % n, body_bytes=n * 700000, dot_lines=True)
                    for n in range(4)]
        batch = b""
        for n, message in enumerate(messages):
            batch += (b"MAIL FROM:<s%d@client.test>\r\nRCPT TO:<carol@example.test>\r\nDATA\r\n" % n
                      + dot_stuff(message) + (b"RSET\r\nNOOP\r\n" if n == 1 else b""))
        client.send(batch + b"QUIT\r\n")
        queue_ids = []
        for n in range(len(messages)):
            client.expect_reply(250, "2.1.0")
            client.expect_reply(250, "2.1.5")
            client.expect_reply(354)
            queue_ids.append(client.expect_reply(250, "queued as").text.split()[-1])
            if n == 1:
                client.expect_reply(250)
                client.expect_reply(250)
        client.expect_reply(221)
        self.assertEqual(len(set(queue_ids)), len(messages))
        for n, message in enumerate(messages):
            self.assertTrue(self.stored("carol@example.test", "pipelined-%d" % n) == [message], n)

    def test_many_pipelined_commands_without_reading_replies(self):
        # A client that sends and never reads: the server must stop reading (its replies
        # have nowhere to go) instead of queueing them in memory.
        client = self.client()
        count = 300000
        sender = threading.Thread(target=lambda: client.send(b"NOOP\r\n" * count))
        sender.start()
        time.sleep(1.0)
        self.assert_rss_bounded()
        received = 0
        data = b""
        client.sock.settimeout(60)
        while received < count:
            chunk = client.sock.recv(1 << 20)
            self.assertTrue(chunk, "closed after %d replies" % received)
            data += chunk
            received += data.count(b"\r\n")
            data = data[data.rfind(b"\r\n") + 2:] if b"\r\n" in data else data
        sender.join()
        self.assertEqual(received, count)
        self.assert_usable(client)


class SmallLimitsTest(unittest.TestCase):
    """A server with small message and recipient limits."""

    @classmethod
    def setUpClass(cls):
        cls.server = Server(extra={"smtp": {"max_message_bytes": 100000, "max_recipients": 5},
                                   "postmaster": "bob@example.test"})

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def tearDown(self):
        self.server.assert_alive(self)

    def stored(self, address, tag):
        return harness.bodies_by_message_id(self.server.messages(address)).get(message_id(tag), [])

    def exact_message(self, tag, size):
        head = b"Message-ID: " + message_id(tag).encode() + b"\r\n\r\n"
        body = (b"x" * 98 + b"\r\n") * ((size - len(head)) // 100)
        body += b"y" * (size - len(head) - len(body) - 2) + b"\r\n"
        assert len(head + body) == size
        return head + body

    def test_announced_size(self):
        client = SmtpClient(self.server.smtp_port)
        self.addCleanup(client.close)
        self.assertIn("SIZE 100000", client.expect("EHLO client.test", 250).text)
        client.expect("MAIL FROM:<s@client.test> SIZE=100001", 552, "5.3.4")

    def test_body_over_limit_is_read_to_its_end(self):
        client = SmtpClient(self.server.smtp_port)
        self.addCleanup(client.close)
        client.expect("EHLO client.test", 250)
        # Exactly the limit is fine; one byte more is not (the body as stored counts).
        fits = self.exact_message("fits", 100000)
        self.assertEqual(client.send_message("s@client.test", ["alice@example.test"], fits).code, 250)
        one_over = self.exact_message("one-over", 100001)
        reply = client.send_message("s@client.test", ["alice@example.test"], one_over)
        self.assertEqual((reply.code, "5.3.4" in reply.text), (552, True), reply)
        # A large one, with lines that look like commands and dot lines inside.
        big = make_message("far-over", body_bytes=3 << 20, dot_lines=True)
        big = big.replace(b"\r\n..\r\n", b"\r\n..\r\nQUIT\r\n", 3)
        reply = client.send_message("s@client.test", ["alice@example.test"], big)
        self.assertEqual((reply.code, "5.3.4" in reply.text), (552, True), reply)
        # The connection is in step and usable for the next message.
        client.expect("NOOP", 250)
        after = make_message("after-too-big")
        self.assertEqual(client.send_message("s@client.test", ["alice@example.test"], after).code, 250)
        self.assertEqual(self.stored("alice@example.test", "fits"), [fits])
        self.assertEqual(self.stored("alice@example.test", "one-over"), [])
        self.assertEqual(self.stored("alice@example.test", "far-over"), [])
        self.assertEqual(self.stored("alice@example.test", "after-too-big"), [after])

    def test_too_many_recipients(self):
        client = SmtpClient(self.server.smtp_port)
        self.addCleanup(client.close)
        client.expect("EHLO client.test", 250)
        client.expect("MAIL FROM:<s@client.test>", 250)
        for n in range(5):
            client.expect("RCPT TO:<alice+%d@example.test>" % n, 250)
        client.expect("RCPT TO:<bob@example.test>", 452, "4.5.3")
        client.expect("RCPT TO:<carol@example.test>", 452, "4.5.3")
        client.expect("DATA", 354)
        message = make_message("five-recipients")
        client.send(dot_stuff(message))
        client.expect_reply(250)
        self.assertEqual(self.stored("alice@example.test", "five-recipients"), [message])
        self.assertEqual(self.stored("bob@example.test", "five-recipients"), [])
        # Refused recipients do not count toward the limit.
        client.expect("MAIL FROM:<s@client.test>", 250)
        for n in range(3):
            client.expect("RCPT TO:<nobody%d@example.test>" % n, 550)
        for recipient in ["alice", "bob", "carol", "postmaster", "x@catchall.test"]:
            client.expect("RCPT TO:<%s>" % (recipient if "@" in recipient else recipient + "@example.test"), 250)
        client.expect("RCPT TO:<alice@example.test>", 452, "4.5.3")
        client.expect("RSET", 250)

    def test_configured_postmaster(self):
        client = SmtpClient(self.server.smtp_port)
        self.addCleanup(client.close)
        client.expect("EHLO client.test", 250)
        message = make_message("configured-postmaster")
        self.assertEqual(client.send_message("", ["postmaster"], message).code, 250)
        self.assertEqual(self.stored("bob@example.test", "configured-postmaster"), [message])
        self.assertEqual(self.stored("alice@example.test", "configured-postmaster"), [])


if __name__ == "__main__":
    harness.main()
