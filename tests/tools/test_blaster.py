"""mailwing-blaster against the real servers, on tiny loads.

Checks the JSON report's counts against what the servers say and store, every stored
body against its X-Mailwing-Hash header, the failure paths (refusals, a server that hangs
up or never answers) and that bad arguments give one line and exit status 2.
"""

import socket
import threading
import time
import unittest

import tools_harness as th
from tools_harness import peers


def reply_count(report, code):
    return report["reply_codes"].get(str(code), 0)


class FakeServer:
    """A listener that greets (or not) and then behaves badly, for failure paths."""

    def __init__(self, behaviour):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.behaviour = behaviour
        self.connections = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)
            threading.Thread(target=self.behaviour, args=(conn,), daemon=True).start()

    def close(self):
        self.sock.close()
        for conn in self.connections:
            try:
                conn.close()
            except OSError:
                pass


class BlasterAgainstMailwing(unittest.TestCase):
    def check_latency(self, report, count):
        latency = report["latency_us"]
        self.assertEqual(latency["count"], count)
        keys = ["min", "p50", "p90", "p99", "p99.9", "max"]
        values = [latency[key] for key in keys]
        self.assertEqual(values, sorted(values), latency)
        self.assertGreater(latency["max"], 0)

    def test_counts_in_the_report_match_what_was_stored(self):
        server = th.start_mailwing(self)
        run = th.blast(server.smtp_port, "--connections", "4", "--messages", "200", "--mailboxes", "3",
                       "--size", "uniform:0-4k", "--seed", "3")
        self.assertEqual(run.code, 0, run)
        report = run.report
        self.assertEqual(report["messages"], {"sent": 200, "accepted": 200, "failed": 0, "due_not_started": 0})
        self.assertTrue(report["config"]["pipelining"])
        self.assertFalse(report["config"]["bdat"])
        self.assertTrue(report["server"]["pipelining"])
        self.assertEqual(reply_count(report, 220), 4)
        self.assertEqual(reply_count(report, 354), 200)
        self.assertEqual(reply_count(report, 250), 4 + 3 * 200)  # EHLO, MAIL, RCPT, end of data
        self.assertEqual(reply_count(report, 221), 4)
        self.assertEqual(report["errors"]["total"], 0)
        self.check_latency(report, 200)
        self.assertGreater(report["throughput"]["msgs_per_s"], 0)
        self.assertGreater(report["throughput"]["bytes"], 200 * 200)
        self.assertEqual(run.stderr, "")  # no progress line: stderr is not a terminal
        self.assertIn("200 accepted", run.stdout)

        server.halt()  # the logs are complete once it stopped
        total = 0
        sizes = set()
        for number in range(3):
            payloads = th.stored_messages(server, "user%d@%s" % (number, peers.DOMAIN))
            # Messages go round-robin over the mailboxes: 67, 67, 66.
            self.assertIn(len(payloads), (66, 67))
            for payload in payloads:
                self.assertEqual(peers.check_message(payload), "ok", payload[:300])
                sizes.add(len(payload))
            total += len(payloads)
        self.assertEqual(total, 200)
        self.assertGreater(len(sizes), 10)  # the size distribution was used

    def test_without_pipelining_with_auth_login_and_two_recipients(self):
        server = th.start_mailwing(self)
        run = th.blast(server.smtp_port, "--connections", "2", "--messages", "30", "--pipelining", "off",
                       "--rcpts", "2", "--mailboxes", "3", "--auth", "login", "--user", "user0@" + peers.DOMAIN,
                       "--password", "secret0")
        self.assertEqual(run.code, 0, run)
        report = run.report
        self.assertFalse(report["config"]["pipelining"])
        self.assertEqual(report["messages"]["accepted"], 30)
        self.assertEqual(reply_count(report, 334), 2 * 2)
        self.assertEqual(reply_count(report, 235), 2)
        self.assertEqual(reply_count(report, 250), 2 + 30 * 4)  # EHLO, MAIL, 2 RCPT, end
        server.halt()
        stored = sum(len(th.stored_messages(server, "user%d@%s" % (n, peers.DOMAIN))) for n in range(3))
        self.assertEqual(stored, 60)

    def test_auth_plain(self):
        server = th.start_mailwing(self)
        run = th.blast(server.smtp_port, "--connections", "3", "--messages", "30", "--auth", "plain",
                       "--user", "user1@" + peers.DOMAIN, "--password", "secret1")
        self.assertEqual(run.code, 0, run)
        self.assertEqual(reply_count(run.report, 235), 3)
        self.assertEqual(run.report["config"]["auth"], "plain")

    def test_wrong_password_is_an_auth_error(self):
        server = th.start_mailwing(self)
        run = th.blast(server.smtp_port, "--connections", "1", "--messages", "5", "--auth", "plain",
                       "--user", "user1@" + peers.DOMAIN, "--password", "wrong", "--timeout", "20s")
        self.assertEqual(run.code, 1, run)
        self.assertEqual(run.report["messages"]["accepted"], 0)
        self.assertEqual(run.report["errors"]["by_kind"].get("auth"), 1, run.report["errors"])

    def test_open_loop_paces_the_messages(self):
        server = th.start_mailwing(self, durability="none")
        started = time.time()
        run = th.blast(server.smtp_port, "--connections", "4", "--messages", "100", "--rate", "200")
        elapsed = time.time() - started
        self.assertEqual(run.code, 0, run)
        self.assertEqual(run.report["config"]["mode"], "open")
        self.assertEqual(run.report["messages"]["accepted"], 100)
        # 100 messages at 200/s take about half a second; far below that means no pacing.
        self.assertGreater(elapsed, 0.4)
        self.assertLess(run.report["throughput"]["msgs_per_s"], 260)

    def test_duration_limit(self):
        server = th.start_mailwing(self, durability="none")
        run = th.blast(server.smtp_port, "--connections", "2", "--duration", "1s", "--rate", "100")
        self.assertEqual(run.code, 0, run)
        accepted = run.report["messages"]["accepted"]
        self.assertGreater(accepted, 50)
        self.assertLess(accepted, 160)

    def test_refused_recipients_are_failures_with_their_codes(self):
        server = th.start_mailwing(self)
        run = th.blast(server.smtp_port, "--connections", "2", "--messages", "10", "--to", "nobody{n}@" + peers.DOMAIN,
                       "--mailboxes", "5")
        self.assertEqual(run.code, 1, run)
        report = run.report
        self.assertEqual(report["messages"]["accepted"], 0)
        self.assertEqual(report["messages"]["failed"], 10)
        self.assertEqual(reply_count(report, 550), 10)
        self.assertEqual(report["errors"]["by_kind"], {"rejected": 10})
        self.assertTrue(any("550" in sample for sample in report["errors"]["samples"]), report["errors"])
        self.assertEqual(report["latency_us"]["count"], 0)

    def test_large_message_is_streamed_and_stored_intact(self):
        server = th.start_mailwing(self)
        run = th.blast(server.smtp_port, "--connections", "1", "--messages", "2", "--size", "3m", "--pool", "1",
                       "--to", "user2@" + peers.DOMAIN)
        self.assertEqual(run.code, 0, run)
        self.assertGreater(run.report["throughput"]["bytes"], 6 * 1024 * 1024)
        server.halt()
        payloads = th.stored_messages(server, "user2@" + peers.DOMAIN)
        self.assertEqual(len(payloads), 2)
        for payload in payloads:
            self.assertEqual(peers.check_message(payload), "ok")


class BlasterFailurePaths(unittest.TestCase):
    def test_server_that_hangs_up_is_reported_not_waited_for(self):
        def greet_then_close(conn):
            conn.sendall(b"220 fake ESMTP\r\n")
            conn.recv(100)
            conn.close()

        fake = FakeServer(greet_then_close)
        self.addCleanup(fake.close)
        run = th.blast(fake.port, "--connections", "3", "--messages", "10", timeout_s=30)
        self.assertEqual(run.code, 1, run)
        self.assertEqual(run.report["errors"]["by_kind"].get("closed"), 3, run.report["errors"])

    def test_server_that_never_answers_times_out(self):
        def silent(conn):
            time.sleep(30)

        fake = FakeServer(silent)
        self.addCleanup(fake.close)
        started = time.time()
        run = th.blast(fake.port, "--connections", "2", "--messages", "10", "--timeout", "1s", timeout_s=30)
        self.assertLess(time.time() - started, 15)
        self.assertEqual(run.code, 1, run)
        self.assertEqual(run.report["errors"]["by_kind"].get("timeout"), 2, run.report["errors"])

    def test_nothing_listening(self):
        port = peers.free_port()
        run = th.blast(port, "--messages", "1")
        self.assertEqual(run.code, 1, run)
        self.assertIn("connect", run.stderr)

    def test_bad_arguments_give_one_line_and_status_2(self):
        cases = [
            [],
            ["127.0.0.1:25", "--connections", "0"],
            ["127.0.0.1:25", "--connections", "many"],
            ["127.0.0.1"],
            ["127.0.0.1:25", "--size", "uniform:9-1"],
            ["127.0.0.1:25", "--rate", "0"],
            ["127.0.0.1:25", "--to", "fixed@x", "--mailboxes", "10"],  # no {n} to spread over
            ["127.0.0.1:25", "--to", "u{n}@x", "--mailboxes", "2", "--rcpts", "3"],
            ["127.0.0.1:25", "--auth", "plain"],
            ["127.0.0.1:25", "--pipelining", "maybe"],
            ["127.0.0.1:25", "--no-such-option"],
            ["127.0.0.1:25", "--duration"],
        ]
        for args in cases:
            run = th.run_tool(th.BLASTER, args, json_report=False)
            self.assertEqual(run.code, 2, (args, run))
            lines = run.stderr.splitlines()
            self.assertEqual(len(lines), 1, (args, run.stderr))
            self.assertTrue(lines[0].startswith("mailwing-blaster: "), lines)
            self.assertEqual(run.stdout, "")

    def test_help(self):
        run = th.run_tool(th.BLASTER, ["--help"], json_report=False)
        self.assertEqual(run.code, 0)
        for option in ("--connections", "--rate", "--size", "--pipelining", "--bdat", "--auth", "--json"):
            self.assertIn(option, run.stdout)


@unittest.skipUnless(th.have("smtp-sink"), "Postfix's smtp-sink is not installed")
class BlasterAgainstSmtpSink(unittest.TestCase):
    def test_sink(self):
        sink = peers.SmtpSink()
        self.addCleanup(sink.stop)
        run = th.blast(sink.port, "--connections", "4", "--messages", "200")
        self.assertEqual(run.code, 0, run)
        self.assertEqual(run.report["messages"]["accepted"], 200)
        self.assertEqual(run.report["server"]["greeting"], "smtp-sink ESMTP")
        self.assertTrue(run.report["config"]["pipelining"])


@unittest.skipUnless(th.have("postfix") and th.is_root(), "Postfix is not installed (or not root)")
class BlasterAgainstPostfixSmtpd(unittest.TestCase):
    def test_bdat_when_offered_and_delivered_bodies_match(self):
        postfix = peers.PostfixSmtpd(mailboxes=4)
        self.addCleanup(postfix.stop)
        run = th.blast(postfix.port, "--connections", "3", "--messages", "40", "--mailboxes", "2",
                       "--size", "uniform:0-3k")  # --bdat auto is the default
        self.assertEqual(run.code, 0, run)
        self.assertTrue(run.report["server"]["chunking"])
        self.assertTrue(run.report["config"]["bdat"])
        self.assertEqual(run.report["messages"]["accepted"], 40)
        self.assertTrue(postfix.wait_delivered(40, timeout_s=60), postfix.log_text()[-2000:])
        for mailbox in ("user0", "user1"):
            files = postfix.maildir_files(mailbox)
            self.assertEqual(len(files), 20)
            for path in files:
                with open(path, "rb") as handle:
                    self.assertEqual(peers.check_message(handle.read()), "ok", path)

    def test_data_without_pipelining(self):
        postfix = peers.PostfixSmtpd(mailboxes=4)
        self.addCleanup(postfix.stop)
        run = th.blast(postfix.port, "--connections", "2", "--messages", "20", "--pipelining", "off",
                       "--bdat", "off")
        self.assertEqual(run.code, 0, run)
        self.assertFalse(run.report["config"]["bdat"])
        self.assertEqual(reply_count(run.report, 354), 20)
        self.assertTrue(postfix.wait_delivered(20, timeout_s=60), postfix.log_text()[-2000:])


if __name__ == "__main__":
    th.main()
