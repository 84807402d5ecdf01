"""Python's smtplib against the real server: AUTH LOGIN and PLAIN, partial recipient
refusal (RFC 5321 appendix D.1), 8-bit bodies and a 20 MB message stored byte for byte."""

import smtplib
import unittest

import harness
from harness import Server, make_message, message_id


class SmtplibTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # One server for the whole file; every test uses its own Message-IDs.
        cls.server = Server()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def connect(self):
        client = smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=60)
        self.addCleanup(client.close)
        client.ehlo("client.test")
        return client

    def stored(self, address, tag):
        """The stored records of `address` that carry Message-ID `tag`."""
        found = harness.bodies_by_message_id(self.server.messages(address))
        return found.get(message_id(tag), [])

    def test_ehlo_announces_extensions(self):
        client = self.connect()
        for extension in ("pipelining", "size", "8bitmime", "smtputf8", "enhancedstatuscodes", "auth"):
            self.assertTrue(client.has_extn(extension), extension)
        self.assertEqual(client.esmtp_features["size"], "52428800")
        self.assertEqual(set(client.esmtp_features["auth"].split()), {"PLAIN", "LOGIN"})

    def test_auth_login_then_send(self):
        client = self.connect()
        client.user, client.password = "alice@example.test", "alice-secret"
        code, text = client.auth("LOGIN", client.auth_login, initial_response_ok=False)
        self.assertEqual(code, 235, text)
        message = make_message("auth-login")
        self.assertEqual(client.sendmail("alice@example.test", ["bob@example.test"], message), {})
        client.quit()
        bodies = self.stored("bob@example.test", "auth-login")
        self.assertEqual(bodies, [message])
        record = [r for r in self.server.messages("bob@example.test") if r.body == message][0]
        # RFC 3848: an authenticated ESMTP session is "ESMTPA".
        self.assertIn(b" with ESMTPA id ", record.trace)
        self.assertIn(b"for <bob@example.test>", record.trace)
        self.assertEqual(record.return_path, "alice@example.test")

    def test_auth_login_wrong_password(self):
        client = self.connect()
        client.user, client.password = "alice@example.test", "wrong"
        with self.assertRaises(smtplib.SMTPAuthenticationError) as caught:
            client.auth("LOGIN", client.auth_login, initial_response_ok=False)
        self.assertEqual(caught.exception.smtp_code, 535)
        # Still usable, and unauthenticated mail to a local user is accepted (MX role).
        self.assertEqual(client.noop()[0], 250)
        client.user, client.password = "alice@example.test", "alice-secret"
        self.assertEqual(client.auth("LOGIN", client.auth_login, initial_response_ok=False)[0], 235)

    def test_auth_plain_initial_response(self):
        client = self.connect()
        client.user, client.password = "carol@example.test", "carol-secret"
        code, _ = client.auth("PLAIN", client.auth_plain, initial_response_ok=True)
        self.assertEqual(code, 235)
        # A second AUTH in the same session is a sequence error.
        code, text = client.docmd("AUTH", "PLAIN")
        self.assertEqual(code, 503, text)

    def test_auth_plain_after_334(self):
        client = self.connect()
        client.user, client.password = "bob@example.test", "bob-secret"
        code, _ = client.auth("PLAIN", client.auth_plain, initial_response_ok=False)
        self.assertEqual(code, 235)

    def test_auth_plain_unknown_user_and_mixed_case_login(self):
        client = self.connect()
        client.user, client.password = "nobody@example.test", "alice-secret"
        with self.assertRaises(smtplib.SMTPAuthenticationError):
            client.auth("PLAIN", client.auth_plain)
        # Logins are full addresses, compared case-insensitively.
        client.user, client.password = "Alice@Example.TEST", "alice-secret"
        self.assertEqual(client.auth("PLAIN", client.auth_plain)[0], 235)

    def test_smtplib_login_helper(self):
        # client.login() picks a mechanism itself (PLAIN here).
        client = self.connect()
        self.assertEqual(client.login("alice@example.test", "alice-secret")[0], 235)

    def test_partial_recipients_d1_dialogue(self):
        # RFC 5321 D.1: Smith and Green exist, Jones does not; Brown is elsewhere. Only
        # the accepted recipients get the message.
        client = self.connect()
        message = make_message("d1-dialogue")
        refused = client.sendmail(
            "smith@bar.test",
            ["alice@example.test", "jones@example.test", "bob@example.test", "brown@elsewhere.test"],
            message)
        self.assertEqual(set(refused), {"jones@example.test", "brown@elsewhere.test"})
        self.assertEqual(refused["jones@example.test"][0], 550)
        self.assertIn(b"5.1.1", refused["jones@example.test"][1])
        self.assertEqual(refused["brown@elsewhere.test"][0], 550)
        self.assertIn(b"5.7.1", refused["brown@elsewhere.test"][1])
        client.quit()
        self.assertEqual(self.stored("alice@example.test", "d1-dialogue"), [message])
        self.assertEqual(self.stored("bob@example.test", "d1-dialogue"), [message])
        self.assertEqual(self.stored("carol@example.test", "d1-dialogue"), [])
        record = [r for r in self.server.messages("alice@example.test") if r.body == message][0]
        # Two recipients: the Received: line must not name one (RFC 5321 §7.2).
        self.assertNotIn(b"for <", record.trace)
        self.assertEqual(record.return_path, "smith@bar.test")

    def test_all_recipients_refused(self):
        client = self.connect()
        with self.assertRaises(smtplib.SMTPRecipientsRefused) as caught:
            client.sendmail("x@bar.test", ["nobody@example.test", "x@elsewhere.test"],
                            make_message("all-refused"))
        self.assertEqual({code for code, _ in caught.exception.recipients.values()}, {550})
        # smtplib sent RSET; the session goes on.
        self.assertEqual(client.noop()[0], 250)
        self.assertEqual(client.sendmail("x@bar.test", ["carol@example.test"], make_message("after-refused")), {})
        self.assertEqual(len(self.stored("carol@example.test", "after-refused")), 1)

    def test_eight_bit_body(self):
        client = self.connect()
        message = make_message("eight-bit", body_bytes=20000, eight_bit=True)
        self.assertGreater(max(message), 0x7F)
        self.assertEqual(client.sendmail("sender@bar.test", ["alice@example.test"], message,
                                         mail_options=["BODY=8BITMIME"]), {})
        self.assertEqual(self.stored("alice@example.test", "eight-bit"), [message])

    def test_utf8_sender_with_smtputf8(self):
        client = self.connect()
        message = make_message("utf8-sender")
        self.assertEqual(client.sendmail("jörg@bar.test", ["alice+ü@example.test"], message,
                                         mail_options=["SMTPUTF8"]), {})
        record = [r for r in self.server.messages("alice@example.test") if r.body == message]
        self.assertEqual(len(record), 1)
        self.assertEqual(record[0].return_path, "jörg@bar.test")
        self.assertIn(b" with UTF8SMTP id ", record[0].trace)

    def test_several_messages_one_session(self):
        client = self.connect()
        messages = [make_message("session-%d" % i, body_bytes=1000 * i) for i in range(5)]
        for message in messages:
            self.assertEqual(client.sendmail("s@bar.test", ["carol@example.test"], message), {})
            client.rset()
        client.quit()
        for i, message in enumerate(messages):
            self.assertEqual(self.stored("carol@example.test", "session-%d" % i), [message])

    def test_twenty_megabytes_byte_exact_with_dot_lines(self):
        client = self.connect()
        message = make_message("twenty-mb", body_bytes=20 << 20, dot_lines=True)
        self.assertIn(b"\r\n.\r\n", message)
        self.assertIn(b"\r\n..\r\n", message)
        self.assertEqual(client.sendmail("big@bar.test", ["bob@example.test"], message), {})
        client.quit()
        records = [r for r in self.server.messages("bob@example.test")
                   if b"Message-ID: " + message_id("twenty-mb").encode() in r.payload[:1000]]
        self.assertEqual(len(records), 1)
        self.assertEqual(len(records[0].body), len(message))
        self.assertTrue(records[0].body == message, "the stored 20 MB body differs from the sent one")
        self.assertTrue(records[0].flags & harness.FLAG_HAS_DOT_LINE)

    def test_dot_line_flag_clear_without_dot_lines(self):
        client = self.connect()
        message = make_message("no-dots", body_bytes=5000)
        self.assertNotIn(b"\n.", message)
        self.assertEqual(client.sendmail("s@bar.test", ["carol@example.test"], message), {})
        record = [r for r in self.server.messages("carol@example.test") if r.body == message][0]
        self.assertFalse(record.flags & harness.FLAG_HAS_DOT_LINE)

    def test_size_declared_too_big(self):
        # smtplib adds SIZE=<its length> itself; the server announced 50 MB.
        client = self.connect()
        code, text = client.mail("s@bar.test", ["SIZE=52428801"])
        self.assertEqual(code, 552, text)
        self.assertIn(b"5.3.4", text)
        code, _ = client.mail("s@bar.test", ["SIZE=52428800"])
        self.assertEqual(code, 250)


if __name__ == "__main__":
    harness.main()
