"""POP3 at size: a 30 MB message, with and without lines that need dot-stuffing, is
retrieved byte for byte while the server's memory stays bounded; a maildrop of 100,000
messages (20,000 under the sanitizers) delivered by Postfix's smtp-source logs in, lists
and retrieves correctly, before and after a restart."""

import os
import random
import subprocess
import threading
import time
import unittest

import harness
from harness import Pop3Client, Server, make_message, sha256

ALICE = "alice@example.test"
SMTP_SOURCE = "/usr/sbin/smtp-source"


class BigMessageTest(unittest.TestCase):
    def test_30_mb_messages_with_and_without_dot_lines(self):
        size = 30 << 20
        server = Server(self)
        plain = make_message("big-plain", body_bytes=size, eight_bit=True)
        dotted = make_message("big-dots", body_bytes=size, dot_lines=True)
        payloads = server.deliver(ALICE, [plain, dotted, make_message("small")])
        self.assertIn(b"\r\n.", dotted)
        self.assertNotIn(b"\r\n.", plain)
        with server.pop3(ALICE) as client:
            self.assertEqual(client.scan_listing("LIST"), {n: len(p) for n, p in enumerate(payloads, 1)})
            self.assertEqual(client.retr(3), payloads[2])
            client.ok("QUIT")
        baseline_kb = server.status_kb("VmRSS")
        peak_kb = [baseline_kb]
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak_kb[0] = max(peak_kb[0], server.status_kb("VmRSS"))
                time.sleep(0.01)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            # A small receive window and a reader that takes its time: the server has to
            # wait for the socket instead of reading ahead into memory.
            client = Pop3Client(server.pop3_port, timeout_s=300, receive_buffer=64 << 10)
            self.addCleanup(client.close)
            self.assertTrue(client.login(ALICE, "alice-secret").startswith("+OK"))
            for number in (1, 2):
                reply = client.command("RETR %d" % number)
                self.assertEqual(reply, "+OK %d octets" % len(payloads[number - 1]))
                for _ in range(100):
                    time.sleep(0.005)
                    client.receive()
                stuffed = client.body()
                self.assertTrue(stuffed + b".\r\n" == harness.dot_stuff(payloads[number - 1]),
                                "RETR %d of %d MB differs" % (number, size >> 20))
            # TOP of a big message stops early and is exact too.
            reply, stuffed = client.multiline("TOP 2 40")
            self.assertTrue(reply.startswith("+OK"))
            end = payloads[1].index(b"\r\n\r\n") + 4
            top = payloads[1][:end] + b"".join(l + b"\r\n" for l in payloads[1][end:].split(b"\r\n")[:40])
            self.assertTrue(stuffed + b".\r\n" == harness.dot_stuff(top))
            client.ok("QUIT")
        finally:
            done.set()
            sampler.join()
        grown_mb = (peak_kb[0] - baseline_kb) / 1024
        # Whole-message buffering would cost at least 30 MB. The sanitizers' quarantine of
        # freed blocks makes RSS meaningless there.
        if not harness.sanitized():
            self.assertLess(grown_mb, 16, "RSS grew by %.1f MB while sending 2 x %d MB" % (grown_mb, size >> 20))

    def test_autologout_spares_a_client_still_reading(self):
        """The autologout timer ends idle sessions. A client still reading a RETR response
        is not idle, even when that takes longer than the timer (which RFC 1939 wants at
        least 10 minutes long: a large message on a slow link can take that)."""
        server = Server(self, extra={"pop3": {"autologout_timeout_ms": 1000}})
        payloads = server.deliver(ALICE, [make_message("reader-plain", body_bytes=24 << 20),
                                          make_message("reader-dots", body_bytes=4 << 20, dot_lines=True)])
        # The kernel holds a few MB of the response (the server's send buffer and this
        # window); the rest waits for the reader.
        client = Pop3Client(server.pop3_port, timeout_s=60, receive_buffer=128 << 10)
        self.addCleanup(client.close)
        self.assertTrue(client.login(ALICE, "alice-secret").startswith("+OK"))
        # Pipelined, so that the session always has work: once a response is written, the
        # kernel still holds a few MB of it for the reader, who would then look idle.
        client.send("RETR 1\r\nRETR 2\r\nQUIT\r\n")
        expected = sum(len("+OK %d octets\r\n" % len(p)) + len(harness.dot_stuff(p)) for p in payloads)
        # 32 kB per 2 ms at most: 1.7 s or more for 28 MB, well over the timer, while each
        # step the server queues (a MB or less) is taken in a fraction of it.
        while len(client.buffer) < expected:
            chunk = client.sock.recv(32768)
            self.assertTrue(chunk, "logged out after %d of %d octets" % (len(client.buffer), expected))
            client.buffer += chunk
            time.sleep(0.002)
        for number, payload in enumerate(payloads, 1):
            self.assertTrue(client.message_reply() == payload, "RETR %d differs" % number)
        self.assertTrue(client.status().startswith("+OK"))
        self.assertEqual(client.wait_closed(), b"")
        # A client that stops reading is logged out all the same, without UPDATE.
        with server.pop3(ALICE) as idle:
            idle.send("DELE 1\r\nRETR 1\r\n")
            time.sleep(2)
            idle.wait_closed()
        self.assertEqual(len(server.live_messages(ALICE, 0)), 2)


@unittest.skipUnless(os.access(SMTP_SOURCE, os.X_OK), "Postfix's smtp-source is not installed")
class ManyMessagesTest(unittest.TestCase):
    def test_login_with_100k_messages(self):
        count = 20000 if harness.sanitized() else 100000
        # Durability is not what this test is about: skip the syncs to save time.
        server = Server(self, durability="none")
        done = subprocess.run([SMTP_SOURCE, "-d", "-s", "20", "-m", str(count), "-f", "s@client.test",
                               "-t", ALICE, "127.0.0.1:%d" % server.smtp_port],
                              capture_output=True, text=True, timeout=900)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        records = server.messages(ALICE, crc_check_bytes_max=0)
        self.assertEqual(len(records), count)
        sizes = [len(r.payload) for r in records]
        uids = [r.uid for r in records]
        rng = random.Random()
        sample = sorted(rng.sample(range(1, count + 1), 200) + [1, count])

        with server.pop3(ALICE, timeout_s=300) as client:
            self.assertEqual(client.ok("STAT"), "+OK %d %d" % (count, sum(sizes)))
            self.assertEqual(client.scan_listing("LIST"), dict(enumerate(sizes, 1)))
            self.assertEqual(client.scan_listing("UIDL"), dict(enumerate(uids, 1)))
            # Pipelined RETRs of a sample, checked against the log.
            client.send("".join("RETR %d\r\n" % n for n in sample))
            for number in sample:
                self.assertEqual(client.status(), "+OK %d octets" % sizes[number - 1])
                self.assertEqual(sha256(harness.pop3_unstuff(client.body())),
                                 sha256(records[number - 1].payload), "RETR %d" % number)
            client.ok("QUIT")
        # Delete a thousand, committed at QUIT.
        doomed = set(rng.sample(range(1, count + 1), 1000))
        with server.pop3(ALICE, timeout_s=300) as client:
            client.send("".join("DELE %d\r\n" % n for n in sorted(doomed)))
            for number in sorted(doomed):
                self.assertEqual(client.status(), "+OK message %d deleted" % number)
            self.assertIn("(1000 messages deleted)", client.ok("QUIT"))
        # After a restart the rest is numbered from 1 again, with the same UIDLs and bytes.
        server.restart()
        kept = [n for n in range(1, count + 1) if n not in doomed]
        with server.pop3(ALICE, timeout_s=300) as client:
            self.assertEqual(client.ok("STAT"), "+OK %d %d" % (len(kept), sum(sizes[n - 1] for n in kept)))
            self.assertEqual(client.scan_listing("UIDL"), {i: uids[n - 1] for i, n in enumerate(kept, 1)})
            self.assertEqual(client.scan_listing("LIST"), {i: sizes[n - 1] for i, n in enumerate(kept, 1)})
            new_numbers = [i for i, n in enumerate(kept, 1) if n in sample]
            client.send("".join("RETR %d\r\n" % i for i in new_numbers))
            for i in new_numbers:
                original = kept[i - 1]
                self.assertEqual(client.status(), "+OK %d octets" % sizes[original - 1])
                self.assertEqual(sha256(harness.pop3_unstuff(client.body())),
                                 sha256(records[original - 1].payload))
            client.ok("QUIT")


if __name__ == "__main__":
    harness.main()
