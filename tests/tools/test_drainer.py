"""mailwing-drainer against the real servers, on tiny loads.

Against a private Dovecot (Maildirs written by peers.write_maildir) and against mailwing
once its POP3 service is up (its log says "pop3 listening on"): counts in the JSON
report, DELE, APOP, login-only runs, and above all that a message whose body does not
match its X-Mailwing-Hash header is caught and reported on its own line.
"""

import os
import smtplib
import unittest

import tools_harness as th
from tools_harness import peers

DOVECOT_USERS = {"alice@%s" % peers.DOMAIN: "alice-secret", "bob@%s" % peers.DOMAIN: "bob-secret"}


def corrupt_body(path):
    """Changes one byte of a stored message's body (a Maildir file, LF line ends)."""
    with open(path, "rb") as handle:
        data = bytearray(handle.read())
    at = data.index(b"\n\n") + 3
    while data[at:at + 1] in (b"\n", b"."):
        at += 1
    data[at] = ord("Z") if data[at] != ord("Z") else ord("Y")
    with open(path, "wb") as handle:
        handle.write(bytes(data))


@unittest.skipUnless(th.have("dovecot") and th.is_root(), "Dovecot is not installed (or not root)")
class DrainerAgainstDovecot(unittest.TestCase):
    def setUp(self):
        self.dovecot = peers.Dovecot(DOVECOT_USERS)
        self.addCleanup(self.dovecot.stop)

    def test_every_message_is_retrieved_and_verified(self):
        self.dovecot.fill("alice@" + peers.DOMAIN, 150, size=700, seed=1)
        self.dovecot.fill("bob@" + peers.DOMAIN, 50, size=3000, seed=2)
        users = th.users_file(self, DOVECOT_USERS)
        run = th.drain(self.dovecot.port, "--users", users, "--sessions", "2")
        self.assertEqual(run.code, 0, run)
        report = run.report
        self.assertEqual(report["mailboxes"]["drained"], 2)
        self.assertEqual(report["mailboxes"]["stat_messages"], 200)
        self.assertEqual(report["messages"], {"retrieved": 200, "verified": 200, "unverified": 0,
                                              "integrity_failures": 0, "deleted": 0})
        self.assertEqual(report["integrity_failures"], [])
        self.assertEqual(report["latency_us"]["count"], 200)
        self.assertEqual(report["login_us"]["count"], 2)
        # greeting, USER, PASS, STAT, 200 RETR, QUIT: per mailbox 5 + its messages
        self.assertEqual(report["reply_codes"], {"+OK": 2 * 5 + 200, "-ERR": 0})
        self.assertEqual(report["errors"]["total"], 0)
        # Octets as the server counts them (CRLF), all of them retrieved.
        self.assertEqual(report["throughput"]["bytes"], report["mailboxes"]["stat_octets"])
        self.assertEqual(run.stderr, "")

    def test_a_corrupted_message_is_caught_and_reported(self):
        paths = self.dovecot.fill("alice@" + peers.DOMAIN, 120, size=900, seed=3)
        corrupt_body(paths[41])
        run = th.drain(self.dovecot.port, "--user", "alice@" + peers.DOMAIN, "--password", "alice-secret")
        self.assertEqual(run.code, 1, run)
        report = run.report
        self.assertEqual(report["messages"]["retrieved"], 120)
        self.assertEqual(report["messages"]["verified"], 119)
        self.assertEqual(report["messages"]["integrity_failures"], 1)
        [failure] = report["integrity_failures"]
        self.assertEqual(failure["user"], "alice@" + peers.DOMAIN)
        self.assertEqual(failure["kind"], "mismatch")
        self.assertNotEqual(failure["expected_sha256"], failure["actual_sha256"])
        self.assertEqual(failure["expected_bytes"], failure["body_bytes"])
        # Which POP3 number the file got is Dovecot's business; the message must be the one.
        lines = [line for line in run.stderr.splitlines() if "integrity failure" in line]
        self.assertEqual(len(lines), 1, run.stderr)
        self.assertIn("alice@%s message %d:" % (peers.DOMAIN, failure["message"]), lines[0])
        self.assertIn("1 FAILURES", run.stdout)

    def test_truncated_message_is_caught(self):
        paths = self.dovecot.fill("alice@" + peers.DOMAIN, 10, size=2000, seed=4)
        # Dovecot trusts the ",S=<size>" in a Maildir file name; the shortened file
        # must not claim its old size.
        shortened = paths[0].split(",S=")[0]
        os.rename(paths[0], shortened)
        with open(shortened, "r+b") as handle:
            handle.truncate(os.path.getsize(shortened) - 100)
        run = th.drain(self.dovecot.port, "--user", "alice@" + peers.DOMAIN, "--password", "alice-secret",
                       "--window", "1")
        self.assertEqual(run.code, 1, run)
        [failure] = run.report["integrity_failures"]
        self.assertLess(failure["body_bytes"], failure["expected_bytes"])
        self.assertIn("the header says", run.stderr)

    def test_dele_removes_everything_and_apop_logs_in(self):
        self.dovecot.fill("bob@" + peers.DOMAIN, 40, size=500)
        run = th.drain(self.dovecot.port, "--user", "bob@" + peers.DOMAIN, "--password", "bob-secret",
                       "--dele", "--apop", "--window", "4")
        self.assertEqual(run.code, 0, run)
        self.assertEqual(run.report["messages"]["deleted"], 40)
        self.assertTrue(run.report["config"]["apop"])
        self.assertEqual(self.dovecot.message_files("bob@" + peers.DOMAIN), [])
        again = th.drain(self.dovecot.port, "--user", "bob@" + peers.DOMAIN, "--password", "bob-secret")
        self.assertEqual(again.code, 0, again)
        self.assertEqual(again.report["mailboxes"]["stat_messages"], 0)

    def test_messages_without_a_hash_header_are_counted_not_failed(self):
        maildir = self.dovecot.maildir("alice@" + peers.DOMAIN)
        self.dovecot.fill("alice@" + peers.DOMAIN, 3)
        with open(os.path.join(maildir, "new", "1.plain.host"), "wb") as handle:
            handle.write(b"From: someone\nSubject: not from the blaster\n\nhello\n")
        peers.chown_tree(os.path.dirname(maildir), self.dovecot.uid, self.dovecot.gid)
        run = th.drain(self.dovecot.port, "--user", "alice@" + peers.DOMAIN, "--password", "alice-secret")
        self.assertEqual(run.code, 0, run)
        self.assertEqual(run.report["messages"]["verified"], 3)
        self.assertEqual(run.report["messages"]["unverified"], 1)

    def test_login_only(self):
        self.dovecot.fill("alice@" + peers.DOMAIN, 30)
        run = th.drain(self.dovecot.port, "--user", "alice@" + peers.DOMAIN, "--password", "alice-secret",
                       "--max-messages", "0")
        self.assertEqual(run.code, 0, run)
        self.assertEqual(run.report["messages"]["retrieved"], 0)
        self.assertEqual(run.report["mailboxes"]["stat_messages"], 30)
        self.assertEqual(run.report["login_us"]["count"], 1)
        self.assertGreater(run.report["login_us"]["max"], 0)

    def test_wrong_password_is_a_login_error(self):
        run = th.drain(self.dovecot.port, "--user", "alice@" + peers.DOMAIN, "--password", "wrong")
        self.assertEqual(run.code, 1, run)
        self.assertEqual(run.report["errors"]["by_kind"], {"login": 1})


class DrainerAgainstMailwing(unittest.TestCase):
    def setUp(self):
        self.server = th.start_mailwing(self)
        if self.server.pop3_port is None:
            self.skipTest("mailwing's POP3 service is not running yet (no 'pop3 listening on' in its log)")

    def test_blasted_messages_verify_and_a_bad_one_is_caught(self):
        address = "user1@" + peers.DOMAIN
        run = th.blast(self.server.smtp_port, "--connections", "4", "--messages", "200", "--to", address,
                       "--size", "uniform:0-6k")
        self.assertEqual(run.code, 0, run)
        # One message whose header does not match its body, sent by an independent client.
        body = peers.generate_body(__import__("random").Random(5), 800)
        good = peers.make_message(body, number=999, to=address)
        bad = good.replace(body[:20], body[:19] + (b"X" if body[19:20] != b"X" else b"Y"), 1)
        self.assertNotEqual(good, bad)
        with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=30) as client:
            client.sendmail("checker@" + peers.DOMAIN, [address], bad)
        drained = th.drain(self.server.pop3_port, "--user", address, "--password", "secret1")
        self.assertEqual(drained.code, 1, drained)
        report = drained.report
        self.assertEqual(report["messages"]["retrieved"], 201)
        self.assertEqual(report["messages"]["verified"], 200)
        self.assertEqual(report["messages"]["integrity_failures"], 1)
        [failure] = report["integrity_failures"]
        self.assertEqual(failure["message"], 201)
        self.assertEqual(failure["expected_sha256"], __import__("hashlib").sha256(body).hexdigest())
        self.assertIn("integrity failure: %s message 201:" % address, drained.stderr)

    def test_dele_then_nothing_is_left(self):
        address = "user2@" + peers.DOMAIN
        run = th.blast(self.server.smtp_port, "--connections", "2", "--messages", "50", "--to", address)
        self.assertEqual(run.code, 0, run)
        users = th.users_file(self, {address: "secret2", "user3@" + peers.DOMAIN: "secret3"})
        drained = th.drain(self.server.pop3_port, "--users", users, "--dele", "--window", "8")
        self.assertEqual(drained.code, 0, drained)
        self.assertEqual(drained.report["messages"]["deleted"], 50)
        self.assertEqual(drained.report["messages"]["verified"], 50)
        again = th.drain(self.server.pop3_port, "--users", users)
        self.assertEqual(again.code, 0, again)
        self.assertEqual(again.report["mailboxes"]["stat_messages"], 0)


class DrainerArguments(unittest.TestCase):
    def test_bad_arguments_give_one_line_and_status_2(self):
        cases = [
            [],
            ["127.0.0.1:110"],
            ["127.0.0.1:110", "--user", "alice"],
            ["127.0.0.1:110", "--users", "/nonexistent/users.txt"],
            ["127.0.0.1:110", "--user", "a", "--password", "b", "--window", "0"],
            ["127.0.0.1:110", "--user", "a", "--password", "b", "--sessions", "x"],
            ["localhost", "--user", "a", "--password", "b"],
            ["127.0.0.1:110", "--user", "a", "--password", "b", "--bogus"],
        ]
        for args in cases:
            run = th.run_tool(th.DRAINER, args, json_report=False)
            self.assertEqual(run.code, 2, (args, run))
            lines = run.stderr.splitlines()
            self.assertEqual(len(lines), 1, (args, run.stderr))
            self.assertTrue(lines[0].startswith("mailwing-drainer: "), lines)

    def test_malformed_users_file_names_the_line(self):
        path = th.users_file(self, {})
        with open(path, "w") as handle:
            handle.write("alice@example.test:secret\nno-password-here\n")
        run = th.run_tool(th.DRAINER, ["127.0.0.1:110", "--users", path], json_report=False)
        self.assertEqual(run.code, 2, run)
        self.assertIn("%s:2:" % path, run.stderr)


if __name__ == "__main__":
    th.main()
