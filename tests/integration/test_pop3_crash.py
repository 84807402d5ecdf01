"""SIGKILL during a compaction and during a QUIT's UPDATE (and SIGTERM during the
latter), then a restart: every message not deleted is intact (RETR, byte for byte, with
its UIDL), every deletion a QUIT acknowledged is gone, and a deletion that was not
acknowledged is all or nothing."""

import os
import random
import time
import unittest

import harness
from harness import Server, make_message, sha256

ALICE = "alice@example.test"
BOB = "bob@example.test"


def small_messages(prefix, count):
    options = [dict(body_bytes=500), dict(body_bytes=6000, dot_lines=True),
               dict(body_bytes=30000, eight_bit=True), dict(body_bytes=2000, dot_lines=True, eight_bit=True)]
    return [make_message("%s-%d" % (prefix, n), **options[n % len(options)]) for n in range(count)]


class CrashTest(unittest.TestCase):
    def setUp(self):
        self.seed = random.randrange(1 << 30)
        self.rng = random.Random(self.seed)

    def deliver(self, server, address, messages):
        """Delivers; returns {uid: payload} of the new messages."""
        payloads = server.deliver(address, messages)
        with server.pop3(address) as client:
            listing = client.scan_listing("UIDL")
            client.ok("QUIT")
        uids = [listing[n] for n in sorted(listing)][-len(messages):]
        return dict(zip(uids, payloads))

    def verify(self, server, address, expected, context):
        """The mailbox as POP3 shows it after a restart is exactly `expected`."""
        mailboxes = os.path.join(server.data_dir, "mailboxes")
        # Recovery removes what an interrupted compaction left before the server is ready;
        # a compaction the restarted server began since (it may find one worthwhile at
        # once) has a file of its own, made after the start.
        stray = [n for n in os.listdir(mailboxes)
                 if n.endswith(".compact") and os.path.getmtime(os.path.join(mailboxes, n)) < server.started_at]
        self.assertEqual(stray, [], "%s: a stray compaction file after recovery" % context)
        records, whole = server.records(address, crc_check_bytes_max=0)
        self.assertTrue(whole, "%s: bytes after the last good record" % context)
        with server.pop3(address, timeout_s=120) as client:
            listing = client.scan_listing("UIDL")
            self.assertEqual(sorted(listing.values()), sorted(expected),
                             "%s (seed %d): wrong messages after the restart" % (context, self.seed))
            self.assertEqual(client.scan_listing("LIST"), {n: len(expected[u]) for n, u in listing.items()})
            for number, uid in listing.items():
                self.assertTrue(sha256(client.retr(number)) == sha256(expected[uid]),
                                "%s: uid %d differs after the restart" % (context, uid))
            client.ok("QUIT")

    def delete(self, server, address, uids):
        """Deletes the messages with these uids in one session; the QUIT must succeed."""
        with server.pop3(address) as client:
            listing = client.scan_listing("UIDL")
            numbers = [n for n, uid in listing.items() if uid in uids]
            self.assertEqual(len(numbers), len(uids))
            for number in numbers:
                client.ok("DELE %d" % number)
            self.assertIn("(%d messages deleted)" % len(uids), client.ok("QUIT"))

    def kill_during_compaction(self, server, strategy):
        """Asks for a compaction and kills the server at a point `strategy` names; returns
        True when the kill interrupted the compaction (its file was there, its end not
        logged)."""
        compact_path = server.log_path_for(ALICE) + ".compact"
        server.compact()
        deadline = time.time() + 60
        if strategy == "random":
            time.sleep(self.rng.uniform(0, 0.1))
        elif strategy == "after the switch":
            server.wait_for_log(r"compacted %s" % ALICE, timeout_s=60)
        else:
            # "created": as soon as the new log exists; "copying": once bytes are in it.
            while time.time() < deadline:
                try:
                    if os.stat(compact_path).st_size > 0 or strategy == "created":
                        break
                except FileNotFoundError:
                    if "compacted " + ALICE in server.log():
                        break
        server.kill()
        return os.path.exists(compact_path) and "compacted " + ALICE not in server.log()

    def test_kill_during_compaction(self):
        server = Server(self)
        # A few large messages make the copy take a while; the small ones are many records.
        big = [make_message("big-%d" % n, body_bytes=2 << 20, dot_lines=n % 2 == 1)
               for n in range(6 if harness.sanitized() else 16)]
        expected = self.deliver(server, ALICE, big + small_messages("small", 40))
        big_uids = set(sorted(expected)[:len(big)])
        bob = self.deliver(server, BOB, small_messages("bob", 10))
        interrupted = 0
        for strategy in ("created", "copying", "random", "after the switch", "copying"):
            for attempt in range(5):
                # New dead space for this compaction: a large message while several are
                # left, and a few small ones.
                live_big = sorted(big_uids & set(expected))
                live_small = sorted(set(expected) - big_uids)
                doomed = set(self.rng.sample(live_small, 3))
                if len(live_big) > 3:
                    doomed.add(self.rng.choice(live_big))
                self.delete(server, ALICE, doomed)
                for uid in doomed:
                    del expected[uid]
                caught = self.kill_during_compaction(server, strategy)
                interrupted += caught
                server.start()
                context = "killed (%s, attempt %d, %s)" % (strategy, attempt,
                                                           "during" if caught else "not during")
                self.verify(server, ALICE, expected, context)
                if caught or strategy in ("random", "after the switch"):
                    break
        self.verify(server, BOB, bob, "the other mailbox")
        # The point of the test: at least one kill landed inside a compaction.
        self.assertGreater(interrupted, 0, "no kill landed during a compaction")
        # After all that, a compaction runs to its end and new mail still arrives.
        doomed = set(self.rng.sample(sorted(expected), 3))
        self.delete(server, ALICE, doomed)
        for uid in doomed:
            del expected[uid]
        server.compact()
        server.wait_for_log(r"compacted %s" % ALICE, timeout_s=60)
        expected.update(self.deliver(server, ALICE, small_messages("after", 3)))
        server.restart()
        self.verify(server, ALICE, expected, "after a final compaction")

    def test_kill_during_update(self):
        server = Server(self)
        expected = {address: self.deliver(server, address, small_messages(address[:3], 40))
                    for address in (ALICE, BOB)}
        # How the server is stopped after the client sent QUIT. SIGTERM lets a QUIT that
        # is being committed finish; SIGKILL lets nothing finish.
        strategies = ["at once", "log grew", "random", "after the reply", "SIGTERM"]
        rounds = []
        for number, strategy in enumerate(strategies):
            # Each way with a session on either shard: one of the two owns the mailbox, so
            # the UPDATE runs once on the session's shard and once across shards.
            address = (ALICE, BOB)[number % 2]
            rounds += [(strategy, address, 0), (strategy, address, 1)]
        for round_number, (strategy, address, shard) in enumerate(rounds):
            client = server.pop3_on_shard(shard, address)
            listing = client.scan_listing("UIDL")
            numbers = self.rng.sample(sorted(listing), self.rng.randint(1, 6))
            for number in numbers:
                client.ok("DELE %d" % number)
            doomed = {listing[n] for n in numbers}
            size = os.path.getsize(server.log_path_for(address))
            reply = None
            client.send("QUIT\r\n")
            if strategy == "log grew":
                deadline = time.time() + 30
                while os.path.getsize(server.log_path_for(address)) == size and time.time() < deadline:
                    pass
            elif strategy == "random":
                time.sleep(self.rng.uniform(0, 0.005))
            elif strategy == "after the reply":
                reply = client.status()
                self.assertTrue(reply.startswith("+OK"), reply)
            if strategy == "SIGTERM":
                self.assertEqual(server.stop(), 0, server.log())
            else:
                server.kill()
            if reply is None:
                try:
                    reply = client.status()
                except (ConnectionError, OSError):
                    reply = None
            client.close()
            server.start()
            context = "round %d (%s, %s on shard %d, seed %d)" % (round_number, strategy, address, shard,
                                                                  self.seed)
            with server.pop3(address) as check:
                remaining = set(check.scan_listing("UIDL").values())
                check.ok("QUIT")
            gone = doomed - remaining
            if reply is not None and reply.startswith("+OK"):
                self.assertEqual(gone, doomed, "%s: an acknowledged deletion came back" % context)
            else:
                # One tombstone holds them all: either all are gone or none is.
                self.assertIn(gone, (set(), doomed), "%s: a partial UPDATE" % context)
            for uid in gone:
                del expected[address][uid]
            for each in (ALICE, BOB):
                self.verify(server, each, expected[each], context)


if __name__ == "__main__":
    harness.main()
