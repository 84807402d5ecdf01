"""POP3 clients this project did not write, retrieving messages that smtplib delivered:
curl's pop3:// (LIST, UIDL, RETR, DELE) and fetchmail (keep, with UIDL bookkeeping
across sessions and restarts, then no keep). Every message is checked by hash against
the bytes the server stored, which are checked against the bytes smtplib sent."""

import collections
import os
import shutil
import subprocess
import unittest

import harness
from harness import Server, make_message, sha256

ALICE = "alice@example.test"
BOB = "bob@example.test"


def messages(prefix, count):
    shapes = [dict(body_bytes=400), dict(body_bytes=3000, dot_lines=True),
              dict(body_bytes=20000, eight_bit=True), dict(body_bytes=600000, dot_lines=True),
              dict(body_bytes=250000), dict(body_bytes=100, line_bytes=0)]
    return [make_message("%s-%d" % (prefix, n), **shapes[n % len(shapes)]) for n in range(count)]


@unittest.skipUnless(shutil.which("curl"), "curl is not installed")
class CurlPop3Test(unittest.TestCase):
    def curl(self, server, path, *extra, user=ALICE):
        args = ["curl", "--silent", "--show-error", "--max-time", "60",
                "--user", "%s:%s" % (user, server.password(user)),
                "pop3://127.0.0.1:%d/%s" % (server.pop3_port, path)]
        done = subprocess.run(args + list(extra), capture_output=True, timeout=120)
        self.assertEqual(done.returncode, 0, done.stderr.decode(errors="replace"))
        return done.stdout

    def test_list_uidl_retr_dele(self):
        server = Server(self)
        payloads = server.deliver(ALICE, messages("curl", 8))
        listing = self.curl(server, "")
        self.assertEqual(listing, b"".join(b"%d %d\r\n" % (n, len(p)) for n, p in enumerate(payloads, 1)))
        uids = [line.split(b" ")[1] for line in self.curl(server, "", "--request", "UIDL").split(b"\r\n")[:-1]]
        self.assertEqual(uids, [b"%d" % r.uid for r in server.messages(ALICE, crc_check_bytes_max=0)])
        # curl logs in with SASL PLAIN by default; APOP and USER/PASS on request.
        for number, payload in enumerate(payloads, 1):
            options = ([], ["--login-options", "AUTH=+APOP"])[number % 2]
            retrieved = self.curl(server, "%d" % number, *options)
            self.assertEqual(sha256(retrieved), sha256(payload), "curl RETR %d" % number)
        # DELE, committed by the QUIT curl sends as it leaves.
        self.assertEqual(self.curl(server, "2", "--request", "DELE", "--head"), b"")
        self.assertEqual(self.curl(server, ""), b"".join(
            b"%d %d\r\n" % (n, len(p)) for n, p in enumerate(payloads[:1] + payloads[2:], 1)))
        self.assertEqual(sha256(self.curl(server, "2")), sha256(payloads[2]))
        self.assertEqual([r.payload for r in server.live_messages(ALICE, 0).values()],
                         payloads[:1] + payloads[2:])
        # Bob's mailbox (the other shard's) is separate, and empty. (For an empty listing
        # curl prints the status line's CRLF, which it takes for the end of a body line.)
        self.assertEqual(self.curl(server, "", user=BOB).strip(), b"")
        with server.pop3(BOB) as client:
            self.assertEqual(client.multiline("LIST"), ("+OK 0 messages (0 octets)", b""))


FETCHMAIL = shutil.which("fetchmail")

MDA_SCRIPT = """#!/bin/sh
# Stores each message fetchmail hands over in a file of its own.
exec cat > "$(mktemp '%s/msg.XXXXXXXX')"
"""


@unittest.skipUnless(FETCHMAIL, "fetchmail is not installed")
class FetchmailTest(unittest.TestCase):
    def setUp(self):
        self.server = Server(self)
        self.home = os.path.join(self.server.tmp, "fetchmail")
        os.mkdir(self.home)
        self.mda = os.path.join(self.home, "mda.sh")
        self.round = 0

    def fetch(self, address, keep, expect_mail=True):
        """One fetchmail run into a fresh directory; returns its output and the messages
        its MDA got."""
        self.round += 1
        inbox = os.path.join(self.home, "inbox%d" % self.round)
        os.mkdir(inbox)
        with open(self.mda, "w") as handle:
            handle.write(MDA_SCRIPT % inbox)
        os.chmod(self.mda, 0o755)
        rc = os.path.join(self.home, "fetchmailrc")
        # uidl: fetchmail remembers which UIDLs it has seen (in the idfile) and, in keep
        # mode, fetches only new ones. no stripcr keeps the CRLF line ends, so that what the
        # MDA gets is exactly what RETR delivered.
        with open(rc, "w") as handle:
            handle.write('poll 127.0.0.1 service %d protocol pop3 auth password uidl\n'
                         '  user "%s" password "%s" is "local" here\n'
                         '  %s no stripcr no rewrite mda "%s" sslproto \'\'\n' %
                         (self.server.pop3_port, address, self.server.password(address),
                          "keep" if keep else "no keep fetchall", self.mda))
        os.chmod(rc, 0o600)  # fetchmail refuses a readable rc file
        env = dict(os.environ, HOME=self.home, FETCHMAILHOME=self.home)
        done = subprocess.run([FETCHMAIL, "-f", rc, "--nodetach", "--invisible", "--nosslcertck",
                               "-i", os.path.join(self.home, "fetchids"),
                               "--pidfile", os.path.join(self.home, "fetchmail.pid")],
                              capture_output=True, text=True, timeout=300, env=env)
        # 0: messages retrieved; 1: no mail.
        self.assertEqual(done.returncode, 0 if expect_mail else 1, done.stdout + done.stderr)
        found = []
        for name in os.listdir(inbox):
            with open(os.path.join(inbox, name), "rb") as handle:
                found.append(handle.read())
        return done.stdout + done.stderr, found

    def assert_same(self, got, payloads):
        self.assertEqual(collections.Counter(map(sha256, got)), collections.Counter(map(sha256, payloads)))

    def test_keep_then_no_keep(self):
        first = self.server.deliver(ALICE, messages("fetch-a", 7))
        _, got = self.fetch(ALICE, keep=True)
        self.assert_same(got, first)
        # Keep: nothing deleted; a second run in keep mode fetches only the new mail, by UIDL.
        second = self.server.deliver(ALICE, messages("fetch-b", 4))
        _, got = self.fetch(ALICE, keep=True)
        self.assert_same(got, second)
        # The UIDLs survive a restart: nothing looks new afterwards.
        self.server.restart()
        _, got = self.fetch(ALICE, keep=True, expect_mail=False)
        self.assertEqual(got, [])
        self.assertEqual(len(self.server.live_messages(ALICE, 0)), 11)
        # No keep: everything is fetched (fetchall) and deleted at QUIT.
        _, got = self.fetch(ALICE, keep=False)
        self.assert_same(got, first + second)
        self.assertEqual(self.server.live_messages(ALICE, 0), {})
        with self.server.pop3(ALICE) as client:
            self.assertEqual(client.ok("STAT"), "+OK 0 0")
        self.fetch(ALICE, keep=False, expect_mail=False)
        # Mail that arrives later is fetched once and gone after.
        third = self.server.deliver(ALICE, messages("fetch-c", 3))
        _, got = self.fetch(ALICE, keep=False)
        self.assert_same(got, third)
        self.assertEqual(self.server.live_messages(ALICE, 0), {})

    def test_no_keep_on_the_other_shard(self):
        payloads = self.server.deliver(BOB, messages("fetch-bob", 6))
        alice = self.server.deliver(ALICE, messages("fetch-alice", 2))
        _, got = self.fetch(BOB, keep=False)
        self.assert_same(got, payloads)
        self.assertEqual(self.server.live_messages(BOB, 0), {})
        self.assertEqual([r.payload for r in self.server.live_messages(ALICE, 0).values()], alice)


if __name__ == "__main__":
    harness.main()
