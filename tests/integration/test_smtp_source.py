"""Postfix's smtp-source (a load generator this project did not write) against the real
server: every message it sends must be stored exactly once."""

import os
import re
import subprocess
import unittest

import harness
from harness import Server

SMTP_SOURCE = "/usr/sbin/smtp-source"


def message_ids(records):
    ids = []
    for record in records:
        match = re.search(rb"\r\nMessage-Id: (<[^>]+>)\r\n", record.body, re.I)
        assert match, record.body[:300]
        ids.append(match.group(1))
    return ids


@unittest.skipUnless(os.access(SMTP_SOURCE, os.X_OK), "Postfix's smtp-source is not installed")
class SmtpSourceTest(unittest.TestCase):
    def run_source(self, server, *args):
        done = subprocess.run([SMTP_SOURCE] + list(args) + ["127.0.0.1:%d" % server.smtp_port],
                              capture_output=True, text=True, timeout=600)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        return done

    def test_2000_messages_10_sessions_disconnecting(self):
        server = Server(self)
        self.run_source(server, "-d", "-s", "10", "-m", "2000",
                        "-f", "sender@client.test", "-t", "alice@example.test")
        records, whole = server.records("alice@example.test")
        self.assertTrue(whole, "the log has bytes after its last good record")
        messages = [r for r in records if r.kind == 1]
        self.assertEqual(len(messages), 2000)
        self.assertEqual(len(set(message_ids(messages))), 2000)
        for record in messages:
            self.assertEqual(record.return_path, "sender@client.test")
            self.assertIn(b"\tfor <alice@example.test>;", record.trace)
            self.assertTrue(record.body.endswith(b"\r\n"))
        self.assertEqual(len({r.uid for r in messages}), 2000)
        self.assertEqual([r.uid for r in messages], sorted(r.uid for r in messages))
        # A clean restart keeps every message once: the journal is not replayed twice.
        server.restart()
        self.assertEqual(len(server.messages("alice@example.test")), 2000)
        self.assertNotIn("torn tail", server.log())
        self.assertEqual(server.messages("bob@example.test"), [])

    def test_sessions_with_many_messages_and_long_bodies(self):
        server = Server(self)
        # 4 sessions, 400 messages of about 5 kB each, connections kept open.
        self.run_source(server, "-s", "4", "-m", "400", "-l", "5000",
                        "-f", "sender@client.test", "-t", "bob@example.test")
        messages = server.messages("bob@example.test")
        self.assertEqual(len(messages), 400)
        self.assertEqual(len(set(message_ids(messages))), 400)
        # smtp-source sends the same body of about -l bytes (numbered lines of X) each time.
        bodies = {record.body.split(b"\r\n\r\n", 1)[1] for record in messages}
        self.assertEqual(len(bodies), 1)
        body = bodies.pop()
        self.assertTrue(5000 <= len(body) < 5100, len(body))
        self.assertTrue(re.fullmatch(rb"(\d*X+\r\n)+", body), body[:200])

    def test_several_recipients_to_one_catch_all_mailbox(self):
        server = Server(self)
        # smtp-source numbers the recipients: 1x@catchall.test .. 5x@catchall.test, all
        # caught by catch@catchall.test, which stores each message once.
        self.run_source(server, "-s", "3", "-m", "300", "-r", "5",
                        "-f", "sender@client.test", "-t", "x@catchall.test")
        messages = server.messages("catch@catchall.test")
        self.assertEqual(len(messages), 300)
        for record in messages:
            self.assertNotIn(b"for <", record.trace)

    def test_unknown_recipient_is_refused(self):
        server = Server(self)
        done = subprocess.run([SMTP_SOURCE, "-m", "1", "-f", "s@client.test", "-t",
                               "nobody@example.test", "127.0.0.1:%d" % server.smtp_port],
                              capture_output=True, text=True, timeout=60)
        self.assertNotEqual(done.returncode, 0)
        self.assertIn("550", done.stdout + done.stderr)
        server.assert_alive(self)


if __name__ == "__main__":
    harness.main()
