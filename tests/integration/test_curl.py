"""curl's SMTP client against the real server: uploads with --mail-from/--mail-rcpt,
AUTH with --user, refused recipients."""

import os
import shutil
import subprocess
import unittest

import harness
from harness import Server, make_message, message_id


@unittest.skipUnless(shutil.which("curl"), "curl is not installed")
class CurlTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def curl(self, message, sender, recipients, *extra):
        path = os.path.join(self.server.tmp, "upload-%d.eml" % id(message))
        with open(path, "wb") as handle:
            handle.write(message)
        args = ["curl", "--silent", "--show-error", "--max-time", "60",
                "smtp://127.0.0.1:%d/client.test" % self.server.smtp_port,
                "--mail-from", sender, "--upload-file", path]
        for recipient in recipients:
            args += ["--mail-rcpt", recipient]
        return subprocess.run(args + list(extra), capture_output=True, text=True, timeout=120)

    def stored(self, address, tag):
        return harness.bodies_by_message_id(self.server.messages(address)).get(message_id(tag), [])

    def test_upload_to_two_recipients(self):
        message = make_message("curl-two", body_bytes=50000, dot_lines=True)
        done = self.curl(message, "sender@client.test", ["alice@example.test", "bob+curl@example.test"])
        self.assertEqual(done.returncode, 0, done.stderr)
        # curl dot-stuffs on the way out; the server must undo exactly that.
        self.assertEqual(self.stored("alice@example.test", "curl-two"), [message])
        self.assertEqual(self.stored("bob@example.test", "curl-two"), [message])
        self.assertEqual(self.stored("carol@example.test", "curl-two"), [])

    def test_large_upload(self):
        message = make_message("curl-large", body_bytes=5 << 20, dot_lines=True, eight_bit=True)
        done = self.curl(message, "sender@client.test", ["carol@example.test"])
        self.assertEqual(done.returncode, 0, done.stderr)
        records = [r for r in self.server.messages("carol@example.test")
                   if message_id("curl-large").encode() in r.payload[:1000]]
        self.assertEqual(len(records), 1)
        self.assertTrue(records[0].body == message, "stored body differs")

    def test_auth_login_and_plain(self):
        for mechanism in ("LOGIN", "PLAIN"):
            tag = "curl-auth-" + mechanism
            message = make_message(tag)
            done = self.curl(message, "alice@example.test", ["bob@example.test"],
                             "--user", "alice@example.test:alice-secret",
                             "--login-options", "AUTH=" + mechanism)
            self.assertEqual(done.returncode, 0, done.stderr)
            records = [r for r in self.server.messages("bob@example.test") if r.body == message]
            self.assertEqual(len(records), 1, mechanism)
            self.assertIn(b" with ESMTPA id ", records[0].trace)

    def test_auth_wrong_password(self):
        message = make_message("curl-bad-auth")
        done = self.curl(message, "alice@example.test", ["bob@example.test"],
                         "--user", "alice@example.test:wrong", "--login-options", "AUTH=PLAIN")
        self.assertEqual(done.returncode, 67, done.stderr)  # CURLE_LOGIN_DENIED
        self.assertEqual(self.stored("bob@example.test", "curl-bad-auth"), [])

    def test_refused_recipient(self):
        # Without --mail-rcpt-allowfails curl gives up on the first refusal.
        message = make_message("curl-refused")
        done = self.curl(message, "s@client.test", ["alice@example.test", "nobody@example.test"])
        self.assertNotEqual(done.returncode, 0)
        self.assertEqual(self.stored("alice@example.test", "curl-refused"), [])
        # With it, the accepted recipient gets the message.
        message = make_message("curl-allowfails")
        done = self.curl(message, "s@client.test", ["nobody@example.test", "alice@example.test",
                                                    "x@elsewhere.test"], "--mail-rcpt-allowfails")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(self.stored("alice@example.test", "curl-allowfails"), [message])


if __name__ == "__main__":
    harness.main()
