"""Slowloris: clients that drip a byte now and then to hold a session for ever.

Before, every received chunk restarted the deadline, so a client sending one byte a second
never timed out (200 such clients locked every normal client out). Now a command line must
be complete within command_timeout_ms of the moment the server started waiting for it,
DATA must keep an average of 1 KiB/s, and POP3's autologout timer restarts only on a
complete command. Small timeouts here (2 s) so that the test is quick.

    meson test -C build test_slowloris_io_uring test_slowloris_epoll
"""

import select
import socket
import sys
import threading
import time
import unittest

import harness
from harness import Server, SmtpClient, Pop3Client, make_message, message_id, dot_stuff

TIMEOUT_MS = 2000
DRIP_INTERVAL_S = 0.4
# From a drip client's last setup step to its close: the timeout, plus slack for a busy
# machine (the ASan build, both backends' tests at once).
CLOSE_WITHIN_S = TIMEOUT_MS / 1000 + 3.0


def config():
    # The per-address connection limit (which complements this) must not be what ends
    # these connections: they all come from 127.0.0.1.
    return {"smtp": {"command_timeout_ms": TIMEOUT_MS, "data_timeout_ms": TIMEOUT_MS,
                     "max_connections_per_ip": 1000},
            "pop3": {"autologout_timeout_ms": TIMEOUT_MS, "max_connections_per_ip": 1000}}


def read_until(sock, marker, timeout_s=30):
    sock.settimeout(timeout_s)
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before %r: %r" % (marker, data))
        data += chunk
    return data


class Drip:
    """One connection that sends a byte every DRIP_INTERVAL_S and never finishes a line."""

    def __init__(self, kind, port):
        self.kind = kind
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        if kind == "pop3":
            read_until(self.sock, b"\r\n")
        else:
            read_until(self.sock, b"\r\n")  # 220
            if kind == "smtp-data":
                self.sock.sendall(b"EHLO drip.test\r\nMAIL FROM:<drip@client.test>\r\n"
                                  b"RCPT TO:<alice@example.test>\r\nDATA\r\n")
                read_until(self.sock, b"354 ")
        self.ready_at = time.monotonic()
        self.received = b""
        self.closed_at = None
        self.sent = 0

    def drip(self):
        try:
            self.sock.send(b"x")
            self.sent += 1
        except OSError:
            pass  # closed under us: the read side notices

    def read(self):
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, BlockingIOError):
            chunk = b""
        if chunk:
            self.received += chunk
        else:
            self.closed_at = time.monotonic()
            self.sock.close()


class SlowlorisTest(unittest.TestCase):
    def test_drip_clients_are_cut_off_and_others_served(self):
        server = Server(self, extra=config())
        drips = []
        # 200, as in the report that found it: they locked every normal client out.
        for kind, count in (("smtp-command", 80), ("smtp-data", 70), ("pop3", 50)):
            port = server.pop3_port if kind == "pop3" else server.smtp_port
            drips += [Drip(kind, port) for _ in range(count)]
        for drip in drips:
            drip.sock.setblocking(False)

        # A normal client meanwhile: a whole SMTP transaction and a POP3 login.
        outcome = {}

        def normal_client():
            try:
                time.sleep(0.5)
                started = time.monotonic()
                with SmtpClient(server.smtp_port) as client:
                    client.expect("EHLO normal.test", 250)
                    reply = client.send_message("s@client.test", ["alice@example.test"],
                                                make_message("served-meanwhile"))
                    outcome["smtp"] = reply.code
                with Pop3Client(server.pop3_port) as pop3:
                    outcome["pop3"] = pop3.login("bob@example.test", "bob-secret")
                    pop3.ok("QUIT")
                outcome["seconds"] = time.monotonic() - started
            except Exception as error:  # reported by the assertions below
                outcome["error"] = repr(error)

        normal = threading.Thread(target=normal_client)
        normal.start()

        deadline = time.monotonic() + CLOSE_WITHIN_S + 3
        next_drip = time.monotonic()
        while time.monotonic() < deadline:
            open_drips = [d for d in drips if d.closed_at is None]
            if not open_drips:
                break
            if time.monotonic() >= next_drip:
                for drip in open_drips:
                    drip.drip()
                next_drip += DRIP_INTERVAL_S
            readable, _, _ = select.select([d.sock for d in open_drips], [], [],
                                           max(0.0, min(next_drip - time.monotonic(), 0.2)))
            by_sock = {d.sock: d for d in open_drips}
            for sock in readable:
                by_sock[sock].read()
        normal.join(timeout=60)
        for drip in drips:
            if drip.closed_at is None:
                drip.sock.close()

        still_open = [d for d in drips if d.closed_at is None]
        self.assertEqual(len(still_open), 0, "%d of %d drip clients still connected after %.1f s "
                         "(kinds: %s)" % (len(still_open), len(drips), CLOSE_WITHIN_S + 3,
                                          sorted({d.kind for d in still_open})))
        held = sorted(d.closed_at - d.ready_at for d in drips)
        print("\n%d drip clients (80 SMTP command, 70 SMTP DATA, 50 POP3), timeouts %d ms: "
              "closed after %.2f-%.2f s; a normal SMTP transaction and POP3 login meanwhile "
              "took %.2f s" % (len(drips), TIMEOUT_MS, held[0], held[-1], outcome.get("seconds", -1)),
              file=sys.stderr)
        for drip in drips:
            held_s = drip.closed_at - drip.ready_at
            self.assertLess(held_s, CLOSE_WITHIN_S, "%s held %.1f s" % (drip.kind, held_s))
            # Each one kept dripping until the server cut it off.
            self.assertGreaterEqual(drip.sent, 2, drip.kind)
            if drip.kind == "pop3":
                # RFC 1939 §3: the autologout timer closes without a response.
                self.assertEqual(drip.received, b"", drip.kind)
            else:
                self.assertTrue(drip.received.startswith(b"421 4.4.2 "), (drip.kind, drip.received))
                self.assertIn(b"timeout exceeded", drip.received)
        self.assertNotIn("error", outcome, outcome)
        self.assertEqual(outcome.get("smtp"), 250, outcome)
        self.assertTrue(outcome.get("pop3", "").startswith("+OK"), outcome)
        stored = harness.bodies_by_message_id(
            harness.read_log(server.data_dir + "/mailboxes/alice@example.test.log")[0])
        self.assertEqual(list(stored), [message_id("served-meanwhile")])
        server.assert_alive(self)


class PaceTest(unittest.TestCase):
    """What the deadlines still allow: slow but honest clients."""

    @classmethod
    def setUpClass(cls):
        cls.server = Server(extra=config())

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def test_a_command_dripped_within_the_timeout_is_served(self):
        with SmtpClient(self.server.smtp_port) as client:
            for byte in b"NOOP\r\n":
                client.send(bytes([byte]))
                time.sleep(0.2)
            client.expect_reply(250)
            # Each complete line restarts the clock.
            for _ in range(3):
                time.sleep(TIMEOUT_MS / 1000 * 0.6)
                client.expect("NOOP", 250)

    def test_data_on_pace_is_not_cut_off(self):
        # 48 KiB over ~3.6 s (~13 KiB/s): longer than data_timeout_ms in all, never a gap
        # that long, and well above the 1 KiB/s minimum.
        message = make_message("on-pace", body_bytes=48 * 1024)
        data = dot_stuff(message)
        with SmtpClient(self.server.smtp_port) as client:
            client.expect("EHLO pace.test", 250)
            client.expect("MAIL FROM:<s@client.test>", 250)
            client.expect("RCPT TO:<carol@example.test>", 250)
            client.expect("DATA", 354)
            step = len(data) // 12 + 1
            for start in range(0, len(data), step):
                client.send(data[start:start + step])
                time.sleep(0.3)
            client.expect_reply(250)

    def test_data_that_falls_behind_is_cut_off(self):
        # A fast start buys time at 1 KiB/s (4 KiB: about 4 s), then a drip: cut off within
        # data_timeout_ms once it is behind, though it never pauses for 2 s.
        with SmtpClient(self.server.smtp_port) as client:
            client.expect("EHLO behind.test", 250)
            client.expect("MAIL FROM:<s@client.test>", 250)
            client.expect("RCPT TO:<carol@example.test>", 250)
            client.expect("DATA", 354)
            started = time.monotonic()
            client.send(b"Subject: behind\r\n\r\n" + b"y" * 4096)
            client.sock.settimeout(0.5)
            output = b""
            while time.monotonic() - started < 20:
                try:
                    client.send(b"y")
                    chunk = client.sock.recv(4096)
                    if not chunk:
                        break
                    output += chunk
                except socket.timeout:
                    continue
                except OSError:
                    break
            held_s = time.monotonic() - started
            self.assertTrue(output.startswith(b"421 4.4.2 "), output)
            self.assertLess(held_s, 4 + TIMEOUT_MS / 1000 + 3)
            self.assertGreater(held_s, 3)

    def test_pop3_command_dripped_after_idle_time(self):
        # Idle for most of the timeout, then a command dripped for longer than the timeout:
        # the clock ran from the greeting, so the drip does not save the session (before,
        # each byte restarted it, and the session lasted until 2 s after the last byte).
        with Pop3Client(self.server.pop3_port) as client:
            greeted = time.monotonic()
            time.sleep(TIMEOUT_MS / 1000 * 0.75)
            try:
                for byte in b"NOOP NOOP NOOP":
                    client.send(bytes([byte]))
                    time.sleep(0.25)
            except OSError:
                pass
            self.assertEqual(client.wait_closed(timeout_s=10), b"")
            self.assertLess(time.monotonic() - greeted, TIMEOUT_MS / 1000 + 2.5)


if __name__ == "__main__":
    harness.main()
