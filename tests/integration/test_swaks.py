"""swaks against the real server: --pipeline (the whole transaction in as few writes as
RFC 2920 allows), AUTH LOGIN and PLAIN, refused recipients."""

import os
import shutil
import subprocess
import unittest

import harness
from harness import Server, make_message, message_id


@unittest.skipUnless(shutil.which("swaks"), "swaks is not installed")
class SwaksTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def swaks(self, message, recipients, *extra, sender="sender@client.test"):
        path = os.path.join(self.server.tmp, "swaks-%d.eml" % id(message))
        with open(path, "wb") as handle:
            # swaks ends the data with "\r\n.\r\n" whether or not it ends in a line end.
            assert message.endswith(b"\r\n")
            handle.write(message[:-2])
        args = ["swaks", "--server", "127.0.0.1", "--port", str(self.server.smtp_port),
                "--helo", "client.test", "--from", sender, "--to", ",".join(recipients),
                "--data", path, "--timeout", "60"]
        return subprocess.run(args + list(extra), capture_output=True, text=True, timeout=120)

    def stored(self, address, tag):
        return harness.bodies_by_message_id(self.server.messages(address)).get(message_id(tag), [])

    def test_pipeline(self):
        message = make_message("swaks-pipeline", body_bytes=30000, dot_lines=True)
        done = self.swaks(message, ["alice@example.test", "carol@example.test"], "--pipeline")
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        # swaks refuses --pipeline against a server that does not announce PIPELINING; it
        # prints what it sent, one write per "->" block.
        self.assertIn("PIPELINING", done.stdout)
        self.assertIn("250 2.0.0 OK: queued as", done.stdout)
        self.assertEqual(self.stored("alice@example.test", "swaks-pipeline"), [message])
        self.assertEqual(self.stored("carol@example.test", "swaks-pipeline"), [message])

    def test_pipeline_with_refused_recipient(self):
        message = make_message("swaks-pipeline-refused")
        done = self.swaks(message, ["nobody@example.test", "bob@example.test"], "--pipeline")
        # swaks reports the refused recipient (exit code 24: some recipients failed) but
        # the message still goes to the accepted one.
        self.assertIn("550 5.1.1", done.stdout)
        self.assertIn("queued as", done.stdout)
        self.assertEqual(self.stored("bob@example.test", "swaks-pipeline-refused"), [message])

    def test_pipeline_all_refused(self):
        message = make_message("swaks-all-refused")
        done = self.swaks(message, ["x@elsewhere.test"], "--pipeline")
        self.assertNotEqual(done.returncode, 0)
        self.assertIn("550 5.7.1", done.stdout)
        self.assertNotIn("queued as", done.stdout)

    def test_auth_login(self):
        message = make_message("swaks-auth-login")
        done = self.swaks(message, ["bob@example.test"], "--auth", "LOGIN",
                          "--auth-user", "alice@example.test", "--auth-password", "alice-secret")
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertIn("334 VXNlcm5hbWU6", done.stdout)
        self.assertIn("334 UGFzc3dvcmQ6", done.stdout)
        self.assertIn("235 2.7.0", done.stdout)
        records = [r for r in self.server.messages("bob@example.test") if r.body == message]
        self.assertEqual(len(records), 1)
        self.assertIn(b" with ESMTPA id ", records[0].trace)

    def test_auth_plain_with_pipeline(self):
        message = make_message("swaks-auth-plain")
        done = self.swaks(message, ["carol@example.test"], "--auth", "PLAIN", "--pipeline",
                          "--auth-user", "carol@example.test", "--auth-password", "carol-secret")
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertIn("235 2.7.0", done.stdout)
        self.assertEqual(self.stored("carol@example.test", "swaks-auth-plain"), [message])

    def test_auth_failure(self):
        message = make_message("swaks-auth-failure")
        done = self.swaks(message, ["carol@example.test"], "--auth", "LOGIN",
                          "--auth-user", "carol@example.test", "--auth-password", "nope")
        self.assertEqual(done.returncode, 28, done.stdout)  # swaks: AUTH failed
        self.assertIn("535 5.7.8", done.stdout)
        self.assertEqual(self.stored("carol@example.test", "swaks-auth-failure"), [])

    def test_generated_message(self):
        # swaks' own message (its --header adds a Message-ID we can find).
        done = subprocess.run(
            ["swaks", "--server", "127.0.0.1", "--port", str(self.server.smtp_port),
             "--to", "postmaster@example.test", "--from", "<>", "--pipeline",
             "--header", "X-Test-Tag: swaks-generated",
             "--body", "line one\n.leading dot\nline three\n"],
            capture_output=True, text=True, timeout=120)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        # postmaster goes to the first user; <> is the null sender.
        bodies = [r.body for r in self.server.messages("alice@example.test")
                  if b"\r\nX-Test-Tag: swaks-generated\r\n" in r.body]
        self.assertEqual(len(bodies), 1)
        # swaks dot-stuffed ".leading dot"; the server must have removed exactly that dot.
        self.assertIn(b"\r\n\r\nline one\r\n.leading dot\r\nline three\r\n", bodies[0])
        record = [r for r in self.server.messages("alice@example.test") if r.body == bodies[0]][0]
        self.assertEqual(record.return_path, "")


if __name__ == "__main__":
    harness.main()
