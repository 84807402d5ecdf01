"""POP3 (RFC 1939) against the real server with Python's poplib, and with a raw client
where the exact bytes matter: USER/PASS, APOP, STAT, LIST, UIDL, RETR and TOP byte for
byte (dot-stuffing included), DELE/RSET/QUIT, the [IN-USE] lock across shards, the
snapshot taken at login, pipelining and the autologout timer. Every message is sent with
smtplib and compared with what the server stored and what it sends back."""

import hashlib
import poplib
import socket
import struct
import threading
import time
import unittest

import harness
from harness import Pop3Client, Server, make_message, sha256

ALICE = "alice@example.test"
BOB = "bob@example.test"


def sample_messages(prefix):
    """Messages that take both RETR paths (sent as is, or dot-stuffed on the way out)."""
    messages = [
        make_message(prefix + "-plain", body_bytes=300),
        make_message(prefix + "-dots", body_bytes=2000, dot_lines=True),
        make_message(prefix + "-8bit", body_bytes=5000, eight_bit=True),
        make_message(prefix + "-big-dots", body_bytes=300000, dot_lines=True, eight_bit=True),
        make_message(prefix + "-big-plain", body_bytes=200000),
        make_message(prefix + "-empty-lines", body_bytes=50, line_bytes=0),
    ]
    # A line start with a dot every few octets: wherever the server's read blocks end, one
    # falls right at or next to a boundary.
    dense = b"".join([b".\r\n", b"..\r\n", b".x\r\n", b"\r\n", b"...\r\n"][i % 5] for i in range(60000))
    messages.append(make_message(prefix + "-dense", body_bytes=0) + dense)
    # A message that is nothing but a dot line after its headers, and one with no body.
    messages.append(make_message(prefix + "-one-dot", body_bytes=0) + b".\r\n")
    messages.append(b"From: <s@client.test>\r\nSubject: headers only\r\nMessage-ID: %s\r\n" %
                    harness.message_id(prefix + "-headers-only").encode())
    return messages


def poplib_client(server, address=None, password=None):
    client = poplib.POP3("127.0.0.1", server.pop3_port, timeout=60)
    if address is not None:
        client.user(address)
        client.pass_(password or server.password(address))
    return client


def joined(lines):
    """poplib returns a message as lines without their CRLF (and unstuffed)."""
    return b"".join(line + b"\r\n" for line in lines)


def top_of(payload, lines):
    """What TOP msg n must return: the headers, the empty line, then n body lines."""
    if b"\r\n\r\n" not in payload:
        return payload  # all headers
    end = payload.index(b"\r\n\r\n") + 4
    body = payload[end:].split(b"\r\n")[:-1]
    return payload[:end] + b"".join(line + b"\r\n" for line in body[:lines])


class Pop3Test(unittest.TestCase):
    def setUp(self):
        self.server = Server(self)
        self.messages = sample_messages("s")
        self.payloads = self.server.deliver(ALICE, self.messages)

    def login_when_free(self, address, timeout_s=20):
        """A session that ended without QUIT gives its lock back once the server notices:
        retry [IN-USE] for a while. Returns a logged-in raw client."""
        deadline = time.time() + timeout_s
        while True:
            client = self.server.pop3()
            reply = client.login(address, self.server.password(address))
            if reply.startswith("+OK"):
                self.addCleanup(client.close)
                return client
            client.close()
            self.assertEqual(reply, "-ERR [IN-USE] maildrop already locked")
            self.assertLess(time.time(), deadline, "the maildrop stays locked")
            time.sleep(0.05)

    def assert_maildrop(self, client, payloads):
        """STAT, LIST, UIDL and every RETR of a session match `payloads` exactly, in
        order; returns the UIDL values."""
        self.assertEqual(client.ok("STAT"), "+OK %d %d" % (len(payloads), sum(map(len, payloads))))
        sizes = client.scan_listing("LIST")
        self.assertEqual(sizes, {n + 1: len(p) for n, p in enumerate(payloads)})
        uids = client.scan_listing("UIDL")
        self.assertEqual(sorted(uids), list(range(1, len(payloads) + 1)))
        self.assertEqual(len(set(uids.values())), len(payloads), "UIDL values repeat")
        for number, payload in enumerate(payloads, 1):
            self.assertTrue(sha256(client.retr(number)) == sha256(payload), "RETR %d differs" % number)
        return [uids[n] for n in sorted(uids)]

    def test_user_pass_stat_list_uidl_retr(self):
        client = poplib_client(self.server)
        self.addCleanup(client.close)
        self.assertTrue(client.getwelcome().startswith(b"+OK "))
        self.assertIn("UIDL", client.capa())
        self.assertEqual(client.user(ALICE), b"+OK")
        self.assertTrue(client.pass_("alice-secret").startswith(b"+OK maildrop has %d messages" %
                                                              len(self.payloads)))
        total = sum(map(len, self.payloads))
        self.assertEqual(client.stat(), (len(self.payloads), total))
        reply, lines, _ = client.list()
        self.assertEqual(reply, b"+OK %d messages (%d octets)" % (len(self.payloads), total))
        # RFC 1939 sizes are exact octet counts: those of the message before stuffing.
        self.assertEqual(lines, [b"%d %d" % (n + 1, len(p)) for n, p in enumerate(self.payloads)])
        uids = [line.split()[1] for line in client.uidl()[1]]
        self.assertEqual(len(set(uids)), len(self.payloads))
        records = self.server.messages(ALICE, crc_check_bytes_max=0)
        self.assertEqual(uids, [b"%d" % r.uid for r in records])
        for number, payload in enumerate(self.payloads, 1):
            self.assertEqual(client.list(number), b"+OK %d %d" % (number, len(payload)))
            self.assertEqual(client.uidl(number), b"+OK %d %s" % (number, uids[number - 1]))
            reply, lines, octets = client.retr(number)
            self.assertEqual(reply, b"+OK %d octets" % len(payload))
            self.assertTrue(joined(lines) == payload, "RETR %d differs" % number)
        self.assertTrue(client.quit().startswith(b"+OK"))
        # The same through the raw client: the stuffed bytes on the wire are exact.
        with self.server.pop3(ALICE) as raw:
            self.assert_maildrop(raw, self.payloads)
            # The log has not changed: nothing was deleted.
            self.assertEqual(len(self.server.messages(ALICE, crc_check_bytes_max=0)), len(self.payloads))

    def test_apop(self):
        client = poplib_client(self.server)
        self.addCleanup(client.close)
        self.assertTrue(client.apop(ALICE, "alice-secret").startswith(b"+OK"))
        self.assertEqual(client.stat()[0], len(self.payloads))
        self.assertTrue(joined(client.retr(2)[1]) == self.payloads[1])
        client.quit()
        # A digest over the wrong secret, or another session's timestamp, is refused.
        other = poplib_client(self.server)
        self.addCleanup(other.close)
        with self.assertRaisesRegex(poplib.error_proto, r"\[AUTH\]"):
            other.apop(ALICE, "wrong-secret")
        with Pop3Client(self.server.pop3_port) as first, Pop3Client(self.server.pop3_port) as second:
            digest = hashlib.md5((first.timestamp + "alice-secret").encode()).hexdigest()
            self.assertTrue(second.command("APOP %s %s" % (ALICE, digest)).startswith("-ERR [AUTH]"))
            self.assertTrue(first.command("APOP %s %s" % (ALICE, digest)).startswith("+OK"))

    def test_bad_credentials(self):
        # The same answer for a wrong password and an unknown user.
        for user, password in ((ALICE, "wrong"), ("nobody@example.test", "x")):
            client = poplib_client(self.server)
            self.addCleanup(client.close)
            client.user(user)
            with self.assertRaises(poplib.error_proto) as caught:
                client.pass_(password)
            self.assertEqual(caught.exception.args[0], b"-ERR [AUTH] invalid user name or password")
        # Still unlocked: a good login gets in.
        poplib_client(self.server, ALICE).quit()
        with Pop3Client(self.server.pop3_port) as client:
            for command in ("STAT", "LIST", "RETR 1", "DELE 1", "UIDL", "TOP 1 1"):
                self.assertTrue(client.command(command).startswith("-ERR"), command)
            self.assertTrue(client.command("PASS x").startswith("-ERR"))
            self.assertTrue(client.command("QUIT").startswith("+OK"))
            self.assertEqual(client.wait_closed(), b"")

    def test_top(self):
        client = poplib_client(self.server, ALICE)
        self.addCleanup(client.close)
        for number, payload in enumerate(self.payloads, 1):
            for lines in (0, 1, 7, 8, 100000):
                reply, got, _ = client.top(number, lines)
                self.assertTrue(reply.startswith(b"+OK"), reply)
                self.assertTrue(joined(got) == top_of(payload, lines), "TOP %d %d differs" % (number, lines))
        client.quit()
        with self.server.pop3(ALICE) as raw:
            for number, payload in enumerate(self.payloads, 1):
                for lines in (0, 7, 100000):
                    reply, stuffed = raw.multiline("TOP %d %d" % (number, lines))
                    self.assertTrue(reply.startswith("+OK"), reply)
                    self.assertTrue(stuffed + b".\r\n" == harness.dot_stuff(top_of(payload, lines)),
                                    "TOP %d %d: wrong bytes on the wire" % (number, lines))
            self.assertTrue(raw.command("TOP 1").startswith("-ERR"))
            self.assertTrue(raw.command("TOP 1 x").startswith("-ERR"))
            self.assertTrue(raw.command("TOP %d 1" % (len(self.payloads) + 1)).startswith("-ERR"))

    def test_dele_rset_quit(self):
        count = len(self.payloads)
        client = poplib_client(self.server, ALICE)
        self.addCleanup(client.close)
        self.assertTrue(client.dele(1).startswith(b"+OK"))
        self.assertTrue(client.dele(3).startswith(b"+OK"))
        for call in (lambda: client.retr(1), lambda: client.list(3), lambda: client.uidl(1),
                     lambda: client.top(3, 0), lambda: client.dele(1)):
            self.assertRaises(poplib.error_proto, call)
        self.assertEqual(client.stat(), (count - 2, sum(map(len, self.payloads)) - len(self.payloads[0]) -
                                         len(self.payloads[2])))
        # Numbers do not shift within the session.
        self.assertEqual([int(line.split()[0]) for line in client.list()[1]],
                         [n for n in range(1, count + 1) if n not in (1, 3)])
        self.assertTrue(joined(client.retr(2)[1]) == self.payloads[1])
        # RSET undoes both; then delete others.
        self.assertTrue(client.rset().startswith(b"+OK maildrop has %d messages" % count))
        self.assertEqual(client.stat()[0], count)
        self.assertTrue(joined(client.retr(1)[1]) == self.payloads[0])
        uids = {int(n): int(u) for n, u in (line.split() for line in client.uidl()[1])}
        doomed = [2, count]
        for number in doomed:
            client.dele(number)
        # Nothing is deleted before QUIT.
        self.assertEqual(len(self.server.live_messages(ALICE, 0)), count)
        self.assertIn(b"(2 messages deleted)", client.quit())
        kept = [p for n, p in enumerate(self.payloads, 1) if n not in doomed]
        with self.server.pop3(ALICE) as raw:
            new_uids = self.assert_maildrop(raw, kept)
        self.assertEqual(new_uids, [uids[n] for n in range(1, count + 1) if n not in doomed])
        # In the log: one tombstone naming exactly those uids.
        records, whole = self.server.records(ALICE, crc_check_bytes_max=0)
        self.assertTrue(whole)
        tombstones = [r for r in records if r.kind == 2]
        self.assertEqual(len(tombstones), 1)
        self.assertEqual(sorted(struct.unpack("<2Q", tombstones[0].payload)),
                         sorted(uids[n] for n in doomed))
        self.assertEqual([r.payload for r in self.server.live_messages(ALICE, 0).values()], kept)

    def test_dropped_connection_deletes_nothing(self):
        client = self.server.pop3(ALICE)
        for number in range(1, len(self.payloads) + 1):
            client.ok("DELE %d" % number)
        client.close()  # no QUIT
        raw = self.login_when_free(ALICE)
        self.assert_maildrop(raw, self.payloads)
        # Nor does QUIT in the AUTHORIZATION state, or a QUIT with nothing deleted.
        raw.ok("QUIT")
        self.assertEqual(raw.wait_closed(), b"")
        records, _ = self.server.records(ALICE, crc_check_bytes_max=0)
        self.assertEqual([r.kind for r in records], [1] * len(self.payloads))

    def test_in_use(self):
        first = poplib_client(self.server, ALICE)
        self.addCleanup(first.close)
        second = poplib_client(self.server)
        self.addCleanup(second.close)
        second.user(ALICE)
        with self.assertRaises(poplib.error_proto) as caught:
            second.pass_("alice-secret")
        self.assertEqual(caught.exception.args[0], b"-ERR [IN-USE] maildrop already locked")
        # APOP meets the same lock; another mailbox is free.
        third = poplib_client(self.server)
        self.addCleanup(third.close)
        self.assertRaisesRegex(poplib.error_proto, r"IN-USE", third.apop, ALICE, "alice-secret")
        poplib_client(self.server, BOB).quit()
        # The refused session may log in once the lock is free.
        first.quit()
        second.user(ALICE)
        self.assertTrue(second.pass_("alice-secret").startswith(b"+OK"))
        self.assertEqual(second.stat()[0], len(self.payloads))
        second.quit()

    def test_lock_across_shards(self):
        """Several sessions, accepted by either shard (the greeting names it), log in to
        the same mailbox at once: exactly one gets it, the others get [IN-USE]. Alice's
        mailbox and Bob's are owned by different shards."""
        self.server.deliver(BOB, [make_message("bob-1")])
        for address in (ALICE, BOB):
            for round_number in range(4):
                clients = []
                shards = {0: 0, 1: 0}
                while min(shards.values()) < 2 or len(clients) < 6:
                    self.assertLess(len(clients), 64, "every connection lands on one shard")
                    client = self.server.pop3()
                    self.addCleanup(client.close)
                    clients.append(client)
                    shards[client.shard] += 1
                login = ("USER %s\r\nPASS %s\r\n" % (address, self.server.password(address))).encode()
                barrier = threading.Barrier(len(clients))
                replies = [None] * len(clients)

                def attempt(index):
                    barrier.wait()
                    clients[index].send(login)
                    replies[index] = (clients[index].status(), clients[index].status())

                threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(clients))]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join(timeout=60)
                self.assertTrue(all(r is not None for r in replies), replies)
                self.assertTrue(all(r[0] == "+OK" for r in replies), replies)
                winners = [i for i, r in enumerate(replies) if r[1].startswith("+OK maildrop has")]
                self.assertEqual(len(winners), 1, replies)
                for i, reply in enumerate(replies):
                    if i not in winners:
                        self.assertEqual(reply[1], "-ERR [IN-USE] maildrop already locked")
                winner = clients[winners[0]]
                self.assertTrue(winner.ok("STAT").startswith("+OK"))
                # A loser cannot get in while the winner holds the lock, from either shard...
                for client in clients:
                    if client is not winner:
                        self.assertEqual(client.login(address, self.server.password(address)),
                                         "-ERR [IN-USE] maildrop already locked")
                winner.ok("QUIT")
                self.assertEqual(winner.wait_closed(), b"")
                # Once it has quit, the lock is free again. Then one session at a time, on
                # each shard in turn, holds it against all the others.
                remaining = [c for c in clients if c is not winner]
                for shard in (0, 1):
                    holder = next(c for c in remaining if c.shard == shard)
                    remaining.remove(holder)
                    self.assertTrue(holder.login(address, self.server.password(address)).startswith("+OK"))
                    for client in remaining:
                        self.assertEqual(client.login(address, self.server.password(address)),
                                         "-ERR [IN-USE] maildrop already locked")
                    holder.ok("QUIT")
                    self.assertEqual(holder.wait_closed(), b"")
                for client in clients:
                    client.close()

    def test_snapshot_at_login(self):
        session = self.server.pop3(ALICE)
        self.addCleanup(session.close)
        uids = session.scan_listing("UIDL")
        later = [make_message("later-1", dot_lines=True), make_message("later-2")]
        later_payloads = self.server.deliver(ALICE, later)
        # The session still sees the maildrop as it was at login.
        self.assertEqual(session.ok("STAT"), "+OK %d %d" % (len(self.payloads), sum(map(len, self.payloads))))
        self.assertEqual(session.scan_listing("UIDL"), uids)
        self.assertEqual(len(session.scan_listing("LIST")), len(self.payloads))
        self.assertTrue(session.command("RETR %d" % (len(self.payloads) + 1)).startswith("-ERR"))
        self.assertTrue(session.command("DELE %d" % (len(self.payloads) + 1)).startswith("-ERR"))
        session.ok("DELE 1")
        session.ok("QUIT")
        self.assertEqual(session.wait_closed(), b"")
        # The next session sees the new mail, after the old, with higher UIDLs.
        with self.server.pop3(ALICE) as next_session:
            new_uids = self.assert_maildrop(next_session, self.payloads[1:] + later_payloads)
        self.assertEqual(new_uids[:-2], [uids[n] for n in sorted(uids)][1:])
        self.assertGreater(min(new_uids[-2:]), max(uids.values()))

    def test_uidl_stable_across_sessions_and_restarts(self):
        def uid_map():
            with self.server.pop3(ALICE) as client:
                listing = client.scan_listing("UIDL")
                found = {uid: sha256(client.retr(n)) for n, uid in listing.items()}
                client.ok("QUIT")
            return found

        first = uid_map()
        self.assertEqual(sorted(first.values()), sorted(map(sha256, self.payloads)))
        self.assertEqual(uid_map(), first)
        # Delete the newest and one in the middle; the others keep their UIDLs.
        with self.server.pop3(ALICE) as client:
            listing = client.scan_listing("UIDL")
            doomed = {listing[2], listing[len(listing)]}
            client.ok("DELE 2")
            client.ok("DELE %d" % len(listing))
            client.ok("QUIT")
        kept = {uid: digest for uid, digest in first.items() if uid not in doomed}
        self.assertEqual(uid_map(), kept)
        self.server.restart()
        self.assertEqual(uid_map(), kept)
        # A uid is never given again, not even that of the deleted newest message.
        self.server.deliver(ALICE, [make_message("after-restart")])
        after = uid_map()
        new = set(after) - set(kept)
        self.assertEqual(len(new), 1)
        self.assertGreater(new.pop(), max(first))
        self.server.restart()
        self.assertEqual(uid_map(), after)

    def test_pipelined_commands(self):
        """Many commands in one write are answered in order, whichever way RETR sends the
        message (as is, or stuffed) and however far the output backs up."""
        count = len(self.payloads)
        numbers = list(range(1, count + 1)) * 3 + [4, 5, 4, 5, 1, 7, 8]
        commands = ["USER " + ALICE, "PASS alice-secret", "STAT", "LIST", "UIDL", "NOOP"]
        commands += ["RETR %d" % n for n in numbers]
        commands += ["TOP 2 3", "LIST 3", "RETR %d" % (count + 1), "BOGUS", "DELE 1", "RETR 1",
                     "STAT", "RSET", "RETR 1", "UIDL 1", "QUIT"]
        with Pop3Client(self.server.pop3_port) as client:
            client.send("".join(c + "\r\n" for c in commands))
            self.assertEqual(client.status(), "+OK")
            self.assertTrue(client.status().startswith("+OK maildrop has %d " % count))
            total = sum(map(len, self.payloads))
            self.assertEqual(client.status(), "+OK %d %d" % (count, total))
            self.assertTrue(client.status().startswith("+OK"))
            self.assertEqual(client.body(), b"".join(b"%d %d\r\n" % (n, len(p))
                                                     for n, p in enumerate(self.payloads, 1)))
            self.assertTrue(client.status().startswith("+OK"))
            uidl = client.body()
            self.assertEqual(client.status(), "+OK")
            for number in numbers:
                self.assertEqual(client.status(), "+OK %d octets" % len(self.payloads[number - 1]))
                self.assertTrue(client.body() + b".\r\n" == harness.dot_stuff(self.payloads[number - 1]),
                                "pipelined RETR %d differs" % number)
            self.assertTrue(client.status().startswith("+OK"))
            self.assertTrue(client.body() + b".\r\n" == harness.dot_stuff(top_of(self.payloads[1], 3)))
            self.assertEqual(client.status(), "+OK 3 %d" % len(self.payloads[2]))
            self.assertTrue(client.status().startswith("-ERR"))
            self.assertTrue(client.status().startswith("-ERR"))
            self.assertTrue(client.status().startswith("+OK"))
            self.assertTrue(client.status().startswith("-ERR"))
            self.assertEqual(client.status(), "+OK %d %d" % (count - 1, total - len(self.payloads[0])))
            self.assertTrue(client.status().startswith("+OK"))
            self.assertEqual(client.status(), "+OK %d octets" % len(self.payloads[0]))
            self.assertTrue(client.body() + b".\r\n" == harness.dot_stuff(self.payloads[0]))
            self.assertEqual(client.status(), "+OK 1 " + uidl.split(b"\r\n")[0].split(b" ")[1].decode())
            self.assertTrue(client.status().startswith("+OK"))
            self.assertEqual(client.wait_closed(), b"")
        self.assertEqual(len(self.server.live_messages(ALICE, 0)), count)

    # Once the client has half-closed, io_uring's poll reports the FIN as readiness: a send
    # may end with EAGAIN and a sendfile wait would spin. Both must still deliver all.
    def test_pipelined_commands_then_half_close(self):
        """A client may send every command, QUIT included, and then shut down its side of
        the connection: all are answered, in order, and the QUIT's UPDATE happens."""
        # Messages sent as they are stored alternate with messages that need stuffing.
        payloads = self.server.deliver(BOB, [make_message("half-%d" % n, body_bytes=300000, dot_lines=n % 2 == 0)
                                             for n in range(6)])
        numbers = [n % len(payloads) + 1 for n in range(30)]
        with self.server.pop3(BOB) as client:
            client.send("".join("RETR %d\r\n" % n for n in numbers) + "DELE 2\r\nQUIT\r\n")
            client.sock.shutdown(socket.SHUT_WR)
            # Not reading for a moment lets the responses back up, as for a slow client.
            time.sleep(0.3)
            for number in numbers:
                self.assertEqual(client.status(), "+OK %d octets" % len(payloads[number - 1]))
                self.assertTrue(client.body() + b".\r\n" == harness.dot_stuff(payloads[number - 1]),
                                "RETR %d differs" % number)
            self.assertEqual(client.status(), "+OK message 2 deleted")
            self.assertIn("(1 messages deleted)", client.status())
            self.assertEqual(client.wait_closed(), b"")
        self.assertEqual([r.payload for r in self.server.live_messages(BOB, 0).values()],
                         payloads[:1] + payloads[2:])

    # The other face of it: with the client half-closed, a poll for POLLOUT completes at
    # once, so a sendfile that waited on it would spin for as long as the client does not
    # read (the connection sends from memory once input has ended).
    def test_half_closed_client_that_does_not_read_costs_no_cpu(self):
        payloads = self.server.deliver(BOB, [make_message("idle", body_bytes=5 << 20)])
        with self.server.pop3(BOB) as client:
            client.send("RETR 1\r\n")
            client.sock.shutdown(socket.SHUT_WR)
            time.sleep(0.2)  # until the socket buffers are full
            before = self.server.cpu_seconds()
            time.sleep(1)
            used = self.server.cpu_seconds() - before
            self.assertTrue(client.message_reply() == payloads[0])
        # Waiting for a client costs nothing; a busy loop takes about all of that second.
        self.assertLess(used, 0.5, "the server used %.2f s of CPU waiting for a client" % used)


class AutologoutTest(unittest.TestCase):
    def test_autologout_deletes_nothing(self):
        server = Server(self, extra={"pop3": {"autologout_timeout_ms": 500}})
        payloads = server.deliver(ALICE, sample_messages("auto")[:3])
        client = server.pop3(ALICE)
        self.addCleanup(client.close)
        client.ok("DELE 1")
        client.ok("DELE 3")
        # RFC 1939 §3: the timer closes the session without a response and without UPDATE.
        self.assertEqual(client.wait_closed(), b"")
        deadline = time.time() + 20
        while True:
            other = server.pop3()
            self.addCleanup(other.close)
            reply = other.login(ALICE, "alice-secret")
            if reply.startswith("+OK") or time.time() > deadline:
                break
            time.sleep(0.05)
        self.assertTrue(reply.startswith("+OK maildrop has 3 messages"), reply)
        for number, payload in enumerate(payloads, 1):
            self.assertTrue(other.retr(number) == payload)
        other.ok("QUIT")
        records, _ = server.records(ALICE, crc_check_bytes_max=0)
        self.assertEqual([r.kind for r in records], [1, 1, 1])
        # An idle session in the AUTHORIZATION state is closed the same way.
        with Pop3Client(server.pop3_port) as idle:
            idle.ok("USER " + ALICE)
            self.assertEqual(idle.wait_closed(), b"")


if __name__ == "__main__":
    harness.main()
