"""POP3 at size: a 30 MB message, with and without lines that need dot-stuffing, is
retrieved byte for byte while the server's memory stays bounded; a maildrop of 100,000
messages (20,000 under the sanitizers) delivered by Postfix's smtp-source logs in, lists
and retrieves correctly, before and after a restart."""

import os
import random
import subprocess
import socket
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
            client = Pop3Client(server.pop3_port, timeout_s=300)
            self.addCleanup(client.close)
            # A small receive window and a reader that takes its time: the server has to
            # wait for the socket instead of reading ahead into memory.
            client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
            self.assertTrue(client.login(ALICE, "alice-secret").startswith("+OK"))
            for number in (1, 2):
                reply = client.command("RETR %d" % number)
                self.assertEqual(reply, "+OK %d octets" % len(payloads[number - 1]))
                for _ in range(100):
                    time.sleep(0.005)
                    client._fill()
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

        def check_session(deleted=frozenset()):
            live = [n for n in range(1, count + 1) if n not in deleted]
            with server.pop3(ALICE, timeout_s=300) as client:
                self.assertEqual(client.ok("STAT"), "+OK %d %d" % (len(live), sum(sizes[n - 1] for n in live)))
                self.assertEqual(client.scan_listing("LIST"), {n: sizes[n - 1] for n in live})
                listing = client.scan_listing("UIDL")
                self.assertEqual(listing, {n: uids[n - 1] for n in live})
                # Pipelined RETRs of a sample, checked against the log.
                wanted = [n for n in sample if n not in deleted]
                client.send("".join("RETR %d\r\n" % n for n in wanted))
                for number in wanted:
                    self.assertEqual(client.status(), "+OK %d octets" % sizes[number - 1])
                    self.assertEqual(sha256(harness.pop3_unstuff(client.body())),
                                     sha256(records[number - 1].payload), "RETR %d" % number)
                return client

        client = check_session()
        # Delete a thousand, committed at QUIT; what is left keeps its numbers' UIDLs.
        doomed = set(rng.sample(range(1, count + 1), 1000))
        with server.pop3(ALICE, timeout_s=300) as client:
            client.send("".join("DELE %d\r\n" % n for n in sorted(doomed)))
            for number in sorted(doomed):
                self.assertEqual(client.status(), "+OK message %d deleted" % number)
            self.assertIn("(1000 messages deleted)", client.ok("QUIT"))
        # Renumbered from 1 in the next session: compare by UIDL.
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
