"""Compaction seen through POP3: tools/mailwing-compact reclaims the space of deleted
messages (the log shrinks) while every undeleted message stays byte for byte the same and
keeps its UIDL; a session logged in during a compaction reads its snapshot undisturbed;
and ingestion and retrieval go on while a large compaction runs."""

import os
import re
import smtplib
import subprocess
import threading
import time
import unittest

import harness
from harness import Pop3Error, Server, make_message, sha256

ALICE = "alice@example.test"
BOB = "bob@example.test"
SMTP_SOURCE = "/usr/sbin/smtp-source"


def compacted(server, address, timeout_s=120):
    """Waits for a "compacted <address>: <before> -> <after> bytes" line since the server
    started; returns (before, after) of the latest."""
    pattern = r"compacted %s: (\d+) -> (\d+) bytes" % re.escape(address)
    deadline = time.time() + timeout_s
    while True:
        found = re.findall(pattern, server.log())
        if found:
            return tuple(map(int, found[-1]))
        if time.time() > deadline:
            raise AssertionError("no compaction of %s logged:\n%s" % (address, server.log()[-3000:]))
        time.sleep(0.02)


def strip_trace(payload):
    """The message as the client sent it: the payload without the server's trace lines."""
    return harness.Record(0, 1, 0, 0, 0, payload).body


def tag_of(message):
    match = re.search(rb"\r\nMessage-I[Dd]: (<[^>]+>)\r\n", b"\r\n" + message[:4096])
    return match.group(1) if match else None


def uid_payloads(server, address):
    """{UIDL: RETR} of a whole session, which ends with QUIT."""
    with server.pop3(address, timeout_s=300) as client:
        listing = client.scan_listing("UIDL")
        found = {uid: client.retr(number) for number, uid in listing.items()}
        client.ok("QUIT")
    return found


def uid_digests(server, address):
    return {uid: sha256(payload) for uid, payload in uid_payloads(server, address).items()}


def shapes(prefix, count):
    options = [dict(body_bytes=500), dict(body_bytes=8000, dot_lines=True),
               dict(body_bytes=40000, eight_bit=True), dict(body_bytes=3000, dot_lines=True, eight_bit=True)]
    return [make_message("%s-%d" % (prefix, n), **options[n % len(options)]) for n in range(count)]


class CompactionTest(unittest.TestCase):
    def test_tool_reclaims_space_and_keeps_messages_and_uids(self):
        server = Server(self)
        state = {}
        for address in (ALICE, BOB):  # owned by different shards
            payloads = server.deliver(address, shapes(address.split("@")[0], 30))
            with server.pop3(address) as client:
                uids = client.scan_listing("UIDL")
                # Every third message, and the newest, whose uid must not come back.
                doomed = [n for n in uids if n % 3 == 1 or n == len(uids)]
                dead = sum(len(payloads[n - 1]) + 40 for n in doomed)
                # Below the automatic threshold (half the log), so only the tool compacts.
                self.assertLess(dead * 2, os.path.getsize(server.log_path_for(address)))
                for number in doomed:
                    client.ok("DELE %d" % number)
                client.ok("QUIT")
            kept = {uids[n]: payloads[n - 1] for n in uids if n not in doomed}
            state[address] = (kept, max(uids.values()), os.path.getsize(server.log_path_for(address)))
        self.assertNotIn("compacted", server.log())
        server.compact()
        for address in (ALICE, BOB):
            kept, highest, size = state[address]
            before, after = compacted(server, address)
            self.assertEqual(before, size)
            self.assertLess(after, before)
            self.assertEqual(os.path.getsize(server.log_path_for(address)), after)
            self.assertFalse(os.path.exists(server.log_path_for(address) + ".compact"))
            # The log holds exactly the kept messages, with their uids, in order.
            records, whole = server.records(address, crc_check_bytes_max=0)
            self.assertTrue(whole)
            self.assertEqual([(r.uid, r.payload) for r in records if r.kind == 1], sorted(kept.items()))
            self.assertEqual(uid_digests(server, address), {u: sha256(p) for u, p in kept.items()})
        # After a restart, which reads the compacted logs, nothing has changed, and new mail
        # gets a uid above every earlier one: the deleted newest message's is not reused.
        server.restart()
        for address in (ALICE, BOB):
            kept, highest, _ = state[address]
            self.assertEqual(uid_digests(server, address), {u: sha256(p) for u, p in kept.items()})
            server.deliver(address, [make_message(address + "-after-restart")])
            after = uid_digests(server, address)
            new = set(after) - set(kept)
            self.assertEqual(len(new), 1)
            self.assertGreater(new.pop(), highest)
            state[address] = after
        server.restart()
        for address in (ALICE, BOB):
            self.assertEqual(uid_digests(server, address), state[address])

    def test_session_logged_in_during_compaction(self):
        server = Server(self)
        payloads = server.deliver(ALICE, shapes("during", 20))
        with server.pop3(ALICE) as client:
            for number in range(1, 9):
                client.ok("DELE %d" % number)
            client.ok("QUIT")
        kept = payloads[8:]
        session = server.pop3(ALICE)
        self.addCleanup(session.close)
        uids = session.scan_listing("UIDL")
        server.compact()
        before, after = compacted(server, ALICE)
        self.assertLess(after, before)
        # The session reads its snapshot, whose offsets were those of the old log.
        self.assertEqual(session.ok("STAT"), "+OK %d %d" % (len(kept), sum(map(len, kept))))
        self.assertEqual(session.scan_listing("UIDL"), uids)
        for number, payload in enumerate(kept, 1):
            self.assertTrue(session.retr(number) == payload, "RETR %d after compaction" % number)
            reply, stuffed = session.multiline("TOP %d 2" % number)
            head = payload[:payload.index(b"\r\n\r\n") + 4]
            self.assertTrue(reply.startswith("+OK"), reply)
            self.assertTrue(harness.pop3_unstuff(stuffed).startswith(head), "TOP %d after compaction" % number)
            self.assertTrue(payload.startswith(harness.pop3_unstuff(stuffed)))
        later = server.deliver(ALICE, [make_message("during-later", dot_lines=True)])
        session.ok("DELE 1")
        session.ok("DELE 5")
        self.assertIn("(2 messages deleted)", session.ok("QUIT"))
        remaining = [p for n, p in enumerate(kept, 1) if n not in (1, 5)] + later
        expected_uids = [uids[n] for n in sorted(uids) if n not in (1, 5)]
        with server.pop3(ALICE) as client:
            listing = client.scan_listing("UIDL")
            self.assertEqual([listing[n] for n in sorted(listing)][:-1], expected_uids)
            for number, payload in enumerate(remaining, 1):
                self.assertTrue(client.retr(number) == payload, "RETR %d" % number)
            client.ok("QUIT")
        digests = uid_digests(server, ALICE)
        server.restart()
        self.assertEqual(uid_digests(server, ALICE), digests)

    @unittest.skipUnless(os.access(SMTP_SOURCE, os.X_OK), "Postfix's smtp-source is not installed")
    def test_ingestion_and_retrieval_during_a_large_compaction(self):
        """20,000 messages (fewer under the sanitizers), most deleted at one QUIT; while
        that compaction runs, one client keeps delivering and another keeps retrieving and
        deleting. Afterwards every message is where it must be, byte for byte, with the
        same UIDL."""
        count = 4000 if harness.sanitized() else 20000
        server = Server(self)
        done = subprocess.run([SMTP_SOURCE, "-d", "-s", "10", "-m", str(count), "-f", "s@client.test",
                               "-t", ALICE, "127.0.0.1:%d" % server.smtp_port],
                              capture_output=True, text=True, timeout=600)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        # Most of what stays is in a few large messages: copying them makes the compaction
        # take a while, during which the load below goes on.
        big = [make_message("big-%d" % n, body_bytes=2 << 20, dot_lines=n % 2 == 0)
               for n in range(6 if harness.sanitized() else 24)]
        big_payloads = server.deliver(ALICE, big)
        messages = server.messages(ALICE, crc_check_bytes_max=0)
        self.assertEqual(len(messages), count + len(big))
        digest_of = {r.uid: sha256(r.payload) for r in messages}
        # Keep every tenth of smtp-source's messages and all the big ones.
        doomed = {r.uid for r in messages[:count] if r.uid % 10 != 0}
        kept = {uid: d for uid, d in digest_of.items() if uid not in doomed}
        self.assertEqual([digest_of[r.uid] for r in messages[count:]], list(map(sha256, big_payloads)))

        load = Load(server)
        try:
            with server.pop3(ALICE, timeout_s=300) as client:
                listing = client.scan_listing("UIDL")
                self.assertEqual(sorted(listing.values()), sorted(digest_of))
                numbers = [n for n, uid in listing.items() if uid in doomed]
                for start in range(0, len(numbers), 1000):  # pipelined, a thousand at a time
                    batch = numbers[start:start + 1000]
                    client.send("".join("DELE %d\r\n" % n for n in batch))
                    for number in batch:
                        self.assertEqual(client.status(), "+OK message %d deleted" % number)
                load.start()
                self.assertIn("(%d messages deleted)" % len(doomed), client.ok("QUIT"))
            # The big messages stay, so the dead space is below the automatic threshold:
            # the tool starts the compaction.
            server.compact()
            before, after = compacted(server, ALICE, timeout_s=300)
            self.assertLess(after, before)
            # Let the load go on across the switch to the new log for a while.
            load.wait_for_rounds(5)
        finally:
            load.stop()
        self.assertEqual(load.errors, [])
        self.assertGreater(load.retrievals, 0)
        # The deleted messages are gone from the log itself, not only hidden by tombstones.
        # (Its size is no measure here: the load keeps adding to it.)
        records, whole = server.records(ALICE, crc_check_bytes_max=0)
        self.assertTrue(whole)
        self.assertEqual(doomed & {r.uid for r in records if r.kind == 1}, set())
        # Every original message that was kept, with its uid; every delivered one, minus
        # those the retriever deleted, as sent.
        final = uid_payloads(server, ALICE)
        self.assertEqual({u: sha256(p) for u, p in final.items() if u in digest_of}, kept)
        extra = {tag_of(strip_trace(p)): (u, p) for u, p in final.items() if u not in digest_of}
        self.assertEqual(set(extra), set(load.sent) - load.deleted)
        for tag, (uid, payload) in extra.items():
            self.assertTrue(strip_trace(payload) == load.sent[tag], "%s differs" % tag)
            self.assertGreater(uid, max(digest_of))
            if tag in load.delivered:
                self.assertEqual(sha256(payload), load.delivered[tag])
        server.restart()
        self.assertEqual(uid_digests(server, ALICE), {u: sha256(p) for u, p in final.items()})


class Load:
    """One thread delivers messages to Alice with smtplib; another logs in again and
    again, retrieves the newest few (checking each against what was sent) and sometimes
    deletes one."""

    def __init__(self, server):
        self.server = server
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.sent = {}        # Message-ID -> message, once acknowledged
        self.delivered = {}   # Message-ID -> sha256 of RETR, for those the retriever read
        self.deleted = set()  # Message-IDs whose deletion a QUIT committed
        self.errors = []
        self.retrievals = 0
        self.rounds = 0
        self.threads = [threading.Thread(target=self.guard, args=(f,)) for f in (self.deliver, self.retrieve)]

    def start(self):
        for thread in self.threads:
            thread.start()

    def stop(self):
        self.stopping.set()
        for thread in self.threads:
            if thread.ident is not None:
                thread.join(timeout=300)
                assert not thread.is_alive(), "a load thread hangs"

    def wait_for_rounds(self, more, timeout_s=300):
        with self.lock:
            target = self.rounds + more
        deadline = time.time() + timeout_s
        while time.time() < deadline and not self.errors:
            with self.lock:
                if self.rounds >= target:
                    return
            time.sleep(0.02)
        raise AssertionError("the retriever did not get on: %r" % self.errors)

    def guard(self, work):
        try:
            work()
        except Exception as error:  # reported by the test
            with self.lock:
                self.errors.append("%s: %r" % (work.__name__, error))

    def deliver(self):
        number = 0
        with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=120) as client:
            while not self.stopping.is_set():
                message = make_message("load-%d" % number, body_bytes=(300, 5000, 70000)[number % 3],
                                       dot_lines=number % 2 == 0)
                number += 1
                client.sendmail("load@client.test", [ALICE], message)
                with self.lock:
                    self.sent[tag_of(message)] = message

    def retrieve(self):
        number = 0
        while not self.stopping.is_set():
            try:
                client = self.server.pop3(ALICE, timeout_s=300)
            except Pop3Error as error:
                if "[IN-USE]" not in str(error):
                    raise
                time.sleep(0.01)
                continue
            with client:
                listing = client.scan_listing("UIDL")
                doomed = None
                for message_number in sorted(listing)[-4:]:
                    payload = client.retr(message_number)
                    tag = tag_of(strip_trace(payload))
                    with self.lock:
                        sent = self.sent.get(tag)
                    if sent is None:
                        continue  # one of the originals, or not acknowledged yet
                    if strip_trace(payload) != sent:
                        raise AssertionError("%s retrieved differently" % tag)
                    with self.lock:
                        self.delivered[tag] = sha256(payload)
                        self.retrievals += 1
                    if number % 3 == 0:
                        doomed = (message_number, tag)
                if doomed is not None:
                    client.ok("DELE %d" % doomed[0])
                reply = client.ok("QUIT")
                if doomed is not None:
                    assert "(1 messages deleted)" in reply, reply
                    with self.lock:
                        self.deleted.add(doomed[1])
            number += 1
            with self.lock:
                self.rounds += 1


if __name__ == "__main__":
    harness.main()
