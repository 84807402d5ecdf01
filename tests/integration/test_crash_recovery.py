"""SIGKILL in the middle of a multi-connection load, restart, and every message that got
"250" must be in its mailboxes byte for byte (RFC 5321 §6.1: a 250 is a promise). The
same after SIGTERM, which must also leave nothing to replay."""

import os
import random
import threading
import time
import unittest

import harness
from harness import Server, SmtpClient, make_message, message_id

THREADS = 8
RECIPIENTS = ["alice@example.test", "bob@example.test", "carol+tag@example.test",
              "someone@catchall.test"]
MAILBOX_OF = {"alice@example.test": "alice@example.test", "bob@example.test": "bob@example.test",
              "carol+tag@example.test": "carol@example.test",
              "someone@catchall.test": "catch@catchall.test"}


class Load:
    """THREADS clients sending until the server goes away or stop() is called. Each
    message has a unique Message-ID; `acked` holds those that got 250 after the data,
    `in_doubt` those whose data was sent but whose reply never came."""

    def __init__(self, port, round_name, seed):
        self.port = port
        self.round_name = round_name
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.acked = {}     # tag -> (mailboxes, message)
        self.in_doubt = {}  # tag -> (mailboxes, message)
        self.refused = []   # unexpected replies (text): a bug unless the server is shutting down
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(n, self.rng.random()))
                        for n in range(THREADS)]
        for thread in self.threads:
            thread.start()

    def run(self, number, seed):
        rng = random.Random(seed)
        sent = 0
        client = None
        try:
            while not self.stopping.is_set():
                if client is None or sent % 25 == 24:
                    if client is not None:
                        client.command("QUIT")
                        client.close()
                    client = SmtpClient(self.port, timeout_s=60)
                    client.expect("EHLO load%d.test" % number, 250)
                tag = "%s-t%d-m%d" % (self.round_name, number, sent)
                sent += 1
                size = rng.choice([100, 300, 800, 2000, 6000]) if rng.random() < 0.97 else 1_200_000
                message = make_message(tag, body_bytes=size, seed=rng.random(), dot_lines=sent % 3 == 0)
                chosen = rng.sample(RECIPIENTS, rng.randint(1, 3))
                mailboxes = sorted({MAILBOX_OF[r] for r in chosen})
                client.expect("MAIL FROM:<load@client.test>", 250)
                for recipient in chosen:
                    client.expect("RCPT TO:<%s>" % recipient, 250)
                client.expect("DATA", 354)
                with self.lock:
                    self.in_doubt[tag] = (mailboxes, message)
                client.send(harness.dot_stuff(message))
                reply = client.reply()
                with self.lock:
                    if reply.code != 250:
                        raise AssertionError("after the data: %r" % reply)
                    self.acked[tag] = self.in_doubt.pop(tag)
        except (OSError, ConnectionError):
            pass  # the server went away
        except AssertionError as error:
            # An unexpected reply: wrong unless the server is shutting down (421).
            with self.lock:
                self.refused.append(str(error))
        finally:
            if client is not None:
                client.close()

    def wait_for_acks(self, count, timeout_s=60):
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            with self.lock:
                if len(self.acked) >= count:
                    return
            time.sleep(0.01)
        raise AssertionError("the load got fewer than %d acknowledgements" % count)

    def join(self):
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=120)
            assert not thread.is_alive(), "a load thread hangs"


class CrashRecoveryTest(unittest.TestCase):
    def verify(self, server, acked, in_doubt):
        """Every acknowledged message is in each of its mailboxes exactly once, byte for
        byte; a message in doubt is there at most once, and intact if it is."""
        stored = {}
        for mailbox in sorted(set(MAILBOX_OF.values())):
            records, whole = server.records(mailbox)
            self.assertTrue(whole, "%s: bytes after the last good record" % mailbox)
            uids = [r.uid for r in records]
            self.assertEqual(uids, sorted(set(uids)), "%s: uids not increasing" % mailbox)
            stored[mailbox] = harness.bodies_by_message_id(r for r in records if r.kind == 1)
        for tag, (mailboxes, message) in acked.items():
            for mailbox in sorted(set(MAILBOX_OF.values())):
                bodies = stored[mailbox].get(message_id(tag), [])
                if mailbox in mailboxes:
                    self.assertEqual(len(bodies), 1, "acknowledged %s: %d copies in %s" %
                                     (tag, len(bodies), mailbox))
                    self.assertTrue(bodies[0] == message, "acknowledged %s differs in %s" % (tag, mailbox))
                else:
                    self.assertEqual(bodies, [], "%s delivered to %s" % (tag, mailbox))
        for tag, (mailboxes, message) in in_doubt.items():
            for mailbox in mailboxes:
                bodies = stored[mailbox].get(message_id(tag), [])
                self.assertLessEqual(len(bodies), 1, tag)
                if bodies:
                    self.assertTrue(bodies[0] == message, "unacknowledged %s stored damaged" % tag)
        # An unacknowledged message may be in some of its mailboxes and not in others:
        # shards commit their parts independently, and the client will send it again.

    def test_sigkill_during_load_keeps_every_acknowledged_message(self):
        # Checkpoints often, so that kills also land during and between checkpoints.
        server = Server(self, extra={"store": {"checkpoint_interval_ms": 200}})
        rng = random.Random()
        seed = rng.randrange(1 << 30)
        rng = random.Random(seed)
        acked, in_doubt = {}, {}
        rounds = 4
        for round_number in range(rounds):
            load = Load(server.smtp_port, "kill%d" % round_number, rng.random())
            load.wait_for_acks(rng.randint(5, 40))
            time.sleep(rng.uniform(0.0, 0.4))
            server.kill()
            load.join()
            self.assertEqual(load.refused, [], "seed %d" % seed)
            self.assertGreater(len(load.acked), 0)
            acked.update(load.acked)
            in_doubt.update(load.in_doubt)
            server.start()
            self.verify(server, acked, in_doubt)
            self.assertEqual(os.listdir(os.path.join(server.data_dir, "spool")), [])
        self.assertGreater(len(acked), rounds * 5)
        # Mail still flows after all that.
        with server.client() as client:
            client.expect("EHLO after.test", 250)
            reply = client.send_message("s@client.test", ["alice@example.test"], make_message("after-kills"))
            self.assertEqual(reply.code, 250, reply)
        self.assertEqual(len(harness.bodies_by_message_id(server.messages("alice@example.test"))
                             .get(message_id("after-kills"), [])), 1)

    def test_sigterm_during_load_drains_and_keeps_everything(self):
        # One shard: with two, a transaction that spans shards can hang the drain (the
        # known bug test_limits.DrainTest.test_sigterm_finishes_a_transaction_spanning_shards
        # pins down).
        server = Server(self, shards=1)
        load = Load(server.smtp_port, "term", 7)
        load.wait_for_acks(30)
        code = server.stop()
        self.assertEqual(code, 0, server.log())
        load.join()
        # While draining, clients may get "421 4.3.2 ... shutting down" and nothing else.
        for refusal in load.refused:
            self.assertIn("421 4.3.2", refusal)
        self.assertIn("stopped", server.log())
        # A clean stop leaves everything in the logs: no journal to replay, only the
        # preallocated spare segments (journal.hh).
        leftovers = [name for name in os.listdir(os.path.join(server.data_dir, "journal"))
                     if not name.endswith("-spare.journal")]
        self.assertEqual(leftovers, [])
        server.start()
        self.assertNotIn("replayed", server.log())
        self.assertNotIn("torn tail", server.log())
        self.verify(server, load.acked, load.in_doubt)
        # A transaction in progress at SIGTERM is finished, not cut off: nothing is in
        # doubt after a drain.
        self.assertEqual(load.in_doubt, {})

    def test_sigterm_restart_keeps_everything(self):
        server = Server(self)
        acked = {}
        with server.client() as client:
            client.expect("EHLO client.test", 250)
            for n in range(30):
                tag = "restart-%d" % n
                message = make_message(tag, body_bytes=100 * n, dot_lines=True)
                reply = client.send_message("s@client.test", ["alice@example.test", "bob@example.test"],
                                            message)
                self.assertEqual(reply.code, 250)
                acked[tag] = (["alice@example.test", "bob@example.test"], message)
            client.expect("QUIT", 221)
        for _ in range(2):
            server.restart()
            self.verify(server, acked, {})
        self.assertEqual(len(server.messages("alice@example.test")), 30)


if __name__ == "__main__":
    harness.main()
