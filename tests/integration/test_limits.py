"""Connection limits, timeouts and bounded memory for a message far larger than the
server's buffers."""

import hashlib
import threading
import time
import unittest

import harness
from harness import Server, SmtpClient, make_message, message_id, dot_stuff


class ConnectionLimitTest(unittest.TestCase):
    def test_extra_connection_gets_421(self):
        server = Server(self, extra={"smtp": {"max_connections": 3}})
        clients = [SmtpClient(server.smtp_port) for _ in range(3)]
        for client in clients:
            self.addCleanup(client.close)
            self.assertEqual(client.banner.code, 220)
        # The limit counts connections on all shards together.
        for _ in range(3):
            with SmtpClient(server.smtp_port, read_banner=False) as extra:
                output = extra.wait_closed()
                self.assertTrue(output.startswith(b"421 4.7.0 "), output)
                self.assertEqual(output.count(b"\r\n"), 1, output)
        # The admitted ones work; once one leaves, a new client gets in.
        clients[0].expect("EHLO client.test", 250)
        clients[0].expect("QUIT", 221)
        self.assertEqual(clients[0].wait_closed(), b"")
        # Admitted: back at the limit...
        clients.append(self.admitted_soon(server))
        with SmtpClient(server.smtp_port, read_banner=False) as extra:
            self.assertTrue(extra.wait_closed().startswith(b"421 4.7.0 "))
        # ...a connection that vanishes (no QUIT) frees its slot as well.
        clients[1].close()
        clients.append(self.admitted_soon(server))
        clients[-1].expect("EHLO client.test", 250)

    def admitted_soon(self, server):
        """The server notices a closed connection when it gets to it: retry for a while.
        Returns the admitted client."""
        deadline = time.time() + 20
        while True:
            client = SmtpClient(server.smtp_port, read_banner=False)
            self.addCleanup(client.close)
            try:
                client.banner = client.reply()
            except ConnectionError:
                self.fail("closed without a reply")
            if client.banner.code == 220:
                return client
            self.assertEqual(client.banner.code, 421, client.banner)
            self.assertIn("4.7.0", client.banner.text)
            client.close()
            self.assertLess(time.time(), deadline, "no slot came free")
            time.sleep(0.05)


class TimeoutTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server(extra={"smtp": {"command_timeout_ms": 300, "data_timeout_ms": 400}})

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def tearDown(self):
        self.server.assert_alive(self)

    def assert_timed_out(self, client):
        output = client.wait_closed(timeout_s=30)
        self.assertTrue(output.startswith(b"421 4.4.2 "), output)
        self.assertEqual(output.count(b"\r\n"), 1, output)

    def test_idle_after_banner(self):
        with SmtpClient(self.server.smtp_port) as client:
            self.assert_timed_out(client)

    def test_idle_after_commands(self):
        with SmtpClient(self.server.smtp_port) as client:
            # Activity keeps it open past the timeout...
            for _ in range(12):
                client.expect("NOOP", 250)
                time.sleep(0.05)
            client.expect("EHLO client.test", 250)
            # ...idleness does not.
            self.assert_timed_out(client)

    def test_first_client_after_an_idle_period(self):
        # With no connection the shards sleep without a deadline; the first client that
        # wakes them must get the whole timeout, not one counted from before the sleep.
        time.sleep(1.0)
        with SmtpClient(self.server.smtp_port) as client:
            client.expect("EHLO client.test", 250)
            client.expect("NOOP", 250)

    def test_half_a_command_line(self):
        with SmtpClient(self.server.smtp_port) as client:
            client.send("MAIL FROM:<s@cli")
            self.assert_timed_out(client)

    def test_stalled_data_stores_nothing(self):
        with SmtpClient(self.server.smtp_port) as client:
            client.expect("EHLO client.test", 250)
            client.expect("MAIL FROM:<s@client.test>", 250)
            client.expect("RCPT TO:<alice@example.test>", 250)
            client.expect("DATA", 354)
            client.send(make_message("stalled")[:100])
            self.assert_timed_out(client)
        self.assertEqual(harness.bodies_by_message_id(self.server.messages("alice@example.test")), {})
        with SmtpClient(self.server.smtp_port) as client:
            client.expect("EHLO client.test", 250)
            message = make_message("after-stall")
            self.assertEqual(client.send_message("s@client.test", ["alice@example.test"], message).code, 250)


class DrainTest(unittest.TestCase):
    def drain_with_transaction_in_progress(self, shards, recipients, tag, kill_at_end=False):
        server = Server(self, shards=shards)
        if kill_at_end:
            self.addCleanup(server.kill)  # runs before the server's own cleanup
        idle = SmtpClient(server.smtp_port)
        self.addCleanup(idle.close)
        idle.expect("EHLO client.test", 250)
        busy = SmtpClient(server.smtp_port, timeout_s=5)
        self.addCleanup(busy.close)
        busy.expect("EHLO client.test", 250)
        busy.expect("MAIL FROM:<s@client.test>", 250)
        for recipient in recipients:
            busy.expect("RCPT TO:<%s>" % recipient, 250)
        busy.expect("DATA", 354)
        message = make_message(tag)
        busy.send(message[:50])
        server.process.send_signal(15)
        output = idle.wait_closed()
        self.assertTrue(output.startswith(b"421 4.3.2 "), output)
        # The transaction in progress is finished, then the session is closed.
        time.sleep(0.2)
        busy.send(dot_stuff(message)[50:])
        busy.expect_reply(250, "queued as")
        output = busy.wait_closed()
        self.assertTrue(output.startswith(b"421 4.3.2 "), output)
        self.assertEqual(server.process.wait(timeout=30), 0)
        server.process = None
        server._log.close()
        server.start()
        for recipient in recipients:
            bodies = harness.bodies_by_message_id(server.messages(recipient))
            self.assertEqual(bodies.get(message_id(tag)), [message], recipient)

    def test_sigterm_finishes_the_transaction_in_progress(self):
        self.drain_with_transaction_in_progress(1, ["bob@example.test"], "drained")

    # With several shards, a shard with no sessions of its own must keep running at
    # SIGTERM while another shard's transaction still needs its store.
    def test_sigterm_finishes_a_transaction_spanning_shards(self):
        # Four mailboxes on two shards: whichever shard took the connection, the message
        # needs the other shard's store too. (Today the server then never exits.)
        self.drain_with_transaction_in_progress(
            2, ["alice@example.test", "bob@example.test", "carol@example.test", "catch@catchall.test"],
            "drained-across-shards", kill_at_end=True)


class BoundedMemoryTest(unittest.TestCase):
    def test_rss_stays_bounded_during_a_huge_message(self):
        size = 150 << 20
        server = Server(self, extra={"smtp": {"max_message_bytes": 200 << 20}})
        baseline_kb = server.status_kb("VmRSS")
        client = SmtpClient(server.smtp_port, timeout_s=300)
        self.addCleanup(client.close)
        client.expect("EHLO client.test", 250)
        client.expect("MAIL FROM:<s@client.test> SIZE=%d" % size, 250)
        client.expect("RCPT TO:<carol@example.test>", 250)
        client.expect("DATA", 354)
        # The body is generated as it is sent; its hash is checked against the stored copy.
        line = (b"The quick brown fox jumps over the lazy dog 0123456789 " * 3)[:158] + b"\r\n"
        block = b"Message-ID: " + message_id("huge").encode() + b"\r\n\r\n"
        block += line * ((1 << 20) // len(line))
        digest = hashlib.sha256()
        peak_kb = [0]
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak_kb[0] = max(peak_kb[0], server.status_kb("VmRSS"))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        sent = 0
        try:
            while sent < size:
                chunk = block if sent == 0 else block.split(b"\r\n\r\n", 1)[1]
                chunk = chunk[:size - sent]
                if sent + len(chunk) == size and not chunk.endswith(b"\r\n"):
                    chunk = chunk[:-2] + b"\r\n"
                client.send(chunk)
                digest.update(chunk)
                sent += len(chunk)
            client.send(b".\r\n")
            client.expect_reply(250, "queued as")
        finally:
            done.set()
            sampler.join()
        # VmHWM is the kernel's own peak, which sampling might miss.
        peak_kb[0] = max(peak_kb[0], server.status_kb("VmHWM"))
        grown_mb = (peak_kb[0] - baseline_kb) / 1024
        limit_mb = 40
        self.assertLess(grown_mb, limit_mb, "RSS grew by %.1f MB for a %d MB message" % (grown_mb, size >> 20))
        records = server.messages("carol@example.test")
        self.assertEqual(len(records), 1)
        self.assertEqual(len(records[0].body), size)
        self.assertEqual(hashlib.sha256(records[0].body).hexdigest(), digest.hexdigest())
        # The message is in the log, not in memory: the process did not keep it.
        self.assertLess(server.status_kb("VmRSS") - baseline_kb, limit_mb * 1024)


if __name__ == "__main__":
    harness.main()
