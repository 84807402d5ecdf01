"""Runs the real mailwing binary for integration tests and reads what it stored.

Each test file is a unittest module started by meson as
    python3 tests/integration/<file>.py --binary build/src/mailwing --backend io_uring
and calls harness.main(). A test starts servers with Server(...): each gets a fresh
temporary data_dir and free ports (port 0; the ports are read from the server's log),
so tests can run in parallel.

Mailbox logs are parsed here independently of the C++ code, from the format written
down in include/mailwing/store/record.hh. Tests compare stored bytes with the bytes they
sent, so a passing test means the message really is on disk, not only that the server
said 250. Pop3Client reads POP3 responses byte for byte (poplib hides the dot-stuffing
and cannot pipeline).
"""

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import signal
import smtplib
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

BINARY = None
BACKEND = None

DEFAULT_USERS = [
    {"address": "alice@example.test", "password": "alice-secret"},
    {"address": "bob@example.test", "password": "bob-secret"},
    {"address": "carol@example.test", "password": "carol-secret"},
    {"address": "catch@catchall.test", "password": "catch-secret"},
]


def _crc32c_table():
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def crc32c(data, crc=0):
    """CRC-32C (Castagnoli), as util/crc32c.hh; a few MB/s in pure Python."""
    crc ^= 0xFFFFFFFF
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


RECORD_MAGIC = 0x314C574D
RECORD_HEADER = struct.Struct("<IBBHQQQII")  # 40 bytes, record.hh
assert RECORD_HEADER.size == 40
FLAG_HAS_DOT_LINE = 0x01
# Payload CRCs of larger records are not recomputed here (pure Python is too slow for
# 20 MB); tests of large messages compare the stored bytes with the sent ones instead.
CRC_CHECK_BYTES_MAX = 1 << 20


class Record:
    def __init__(self, offset, kind, flags, uid, arrival_ms, payload):
        self.offset = offset
        self.kind = kind  # 1 message, 2 tombstone
        self.flags = flags
        self.uid = uid
        self.arrival_ms = arrival_ms
        self.payload = payload

    @property
    def size(self):
        return 40 + len(self.payload)

    @property
    def trace(self):
        return self.payload[:len(self.payload) - len(self.body)]

    @property
    def body(self):
        """The message without the Return-Path/Received lines the server prepended."""
        text = self.payload
        for _ in range(2):
            assert text.startswith(b"Return-Path:") or text.startswith(b"Received:"), text[:80]
            end = text.index(b"\r\n")
            while text[end + 2:end + 3] in (b"\t", b" "):
                end = text.index(b"\r\n", end + 2)
            text = text[end + 2:]
        return text

    @property
    def return_path(self):
        match = re.match(rb"Return-Path: <([^>]*)>\r\n", self.payload)
        assert match, self.payload[:80]
        return match.group(1).decode()


def read_log(path, crc_check_bytes_max=CRC_CHECK_BYTES_MAX):
    """Returns (records, valid_bytes, file_bytes). Stops at the first bad record."""
    with open(path, "rb") as handle:
        data = handle.read()
    records = []
    offset = 0
    while offset + 40 <= len(data):
        magic, kind, flags, _reserved, uid, arrival, size, payload_crc, header_crc = \
            RECORD_HEADER.unpack_from(data, offset)
        if magic != RECORD_MAGIC or crc32c(data[offset:offset + 36]) != header_crc:
            break
        if kind not in (1, 2) or offset + 40 + size > len(data):
            break
        payload = data[offset + 40:offset + 40 + size]
        if size <= crc_check_bytes_max and crc32c(payload) != payload_crc:
            break
        records.append(Record(offset, kind, flags, uid, arrival, payload))
        offset += 40 + size
    return records, offset, len(data)


def encode_record(uid, payload, kind=1, flags=0, arrival_ms=0):
    """A record as the server writes it (for tests that plant records in a log)."""
    head = struct.pack("<IBBHQQQI", RECORD_MAGIC, kind, flags, 0, uid, arrival_ms, len(payload),
                       crc32c(payload))
    return head + struct.pack("<I", crc32c(head)) + payload


# ---------------------------------------------------------------------------------------
# Messages


def message_id(tag):
    return "<%s@mailwing.test>" % tag


def make_message(tag, body_bytes=200, seed=None, dot_lines=False, eight_bit=False,
                 line_bytes=76):
    """A message with CRLF line ends that ends in CRLF, so that what a correct client sends
    and what the server stores are the same bytes. `tag` goes into the Message-ID and
    Subject; the body is random text of about body_bytes."""
    rng = random.Random(seed if seed is not None else tag)
    head = ("From: Sender <sender@client.test>\r\nTo: alice@example.test\r\n"
            "Subject: test %s\r\nMessage-ID: %s\r\n\r\n" % (tag, message_id(tag))).encode()
    alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,-:;!?"
    if eight_bit:
        alphabet += bytes(range(0x80, 0x100))
    chunks = []
    size = 0
    line_number = 0
    # One random line, reused with a rotating offset: fast enough for tens of MB.
    pool = bytes(rng.choice(alphabet) for _ in range(4096))
    while size < body_bytes:
        line_number += 1
        if dot_lines and line_number % 7 == 0:
            line = [b".", b"..", b". dot", b".. two dots", b"...\t"][line_number // 7 % 5]
        else:
            width = rng.randint(0, line_bytes)
            start = rng.randint(0, len(pool) - width)
            line = pool[start:start + width]
            if line.startswith(b"."):
                line = b"-" + line[1:]  # dot lines only where asked for
        chunks.append(line + b"\r\n")
        size += len(line) + 2
    return head + b"".join(chunks)


def dot_stuff(message):
    """The DATA content for a CRLF message: leading dots doubled, CRLF.CRLF at the end."""
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    stuffed = message.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    return stuffed + b".\r\n"


def _message_id_of(message):
    match = re.search(rb"\r\nMessage-ID: (<[^>]+>)\r\n", b"\r\n" + message[:4096], re.I)
    return match.group(1) if match else None


def bodies_by_message_id(records):
    """{Message-ID: [body, ...]} for records whose body has a Message-ID header."""
    found = {}
    for record in records:
        match = re.search(rb"\r\nMessage-ID: (<[^>]+>)\r\n", b"\r\n" + record.body[:4096], re.I)
        if match:
            found.setdefault(match.group(1).decode(), []).append(record.body)
    return found


# ---------------------------------------------------------------------------------------
# A raw SMTP client: for what smtplib hides or refuses to do (pipelining, bad input).


class Reply:
    def __init__(self, code, lines):
        self.code = code
        self.lines = lines  # text after "NNN-" / "NNN "

    @property
    def text(self):
        return "\n".join("%d %s" % (self.code, line) for line in self.lines)

    def __repr__(self):
        return "Reply(%r)" % self.text


class SmtpClient:
    def __init__(self, port, timeout_s=10, read_banner=True):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
        self.buffer = b""
        try:
            self.banner = self.reply() if read_banner else None
        except BaseException:
            self.sock.close()
            raise

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _line(self):
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection; unread: %r" % self.buffer)
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        assert line.endswith(b"\r"), "reply line without CRLF: %r" % line
        return line[:-1].decode("utf-8", "replace")

    def reply(self):
        lines = []
        while True:
            line = self._line()
            assert re.match(r"^[2-5]\d\d[ -]", line) or re.match(r"^[2-5]\d\d$", line), \
                "malformed reply line %r" % line
            lines.append(line[4:])
            if len(line) == 3 or line[3] == " ":
                return Reply(int(line[:3]), lines)

    def command(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def expect(self, line, code, text=None):
        got = self.command(line)
        assert got.code == code, "%r: expected %d, got %r" % (line, code, got)
        if text is not None:
            assert text in got.text, "%r: expected %r in %r" % (line, text, got)
        return got

    def expect_reply(self, code, text=None):
        got = self.reply()
        assert got.code == code, "expected %d, got %r" % (code, got)
        if text is not None:
            assert text in got.text, "expected %r in %r" % (text, got)
        return got

    def wait_closed(self, timeout_s=10):
        """Reads until EOF; returns what came before it. Fails if it does not come."""
        self.sock.settimeout(timeout_s)
        data = self.buffer
        self.buffer = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return data
            if not chunk:
                return data
            data += chunk

    def send_message(self, sender, recipients, message, ehlo="client.test"):
        """EHLO if needed, MAIL, RCPTs, DATA; returns the final reply. Every RCPT must be
        accepted."""
        self.expect("MAIL FROM:<%s>" % sender, 250)
        for recipient in recipients:
            self.expect("RCPT TO:<%s>" % recipient, 250)
        self.expect("DATA", 354)
        self.send(dot_stuff(message))
        return self.reply()


# ---------------------------------------------------------------------------------------
# A raw POP3 client: for the exact bytes on the wire and what poplib cannot do
# (pipelining, the autologout timer, a session that never says QUIT).


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def pop3_unstuff(stuffed):
    """The message a multi-line POP3 response carries (RFC 1939 §3): the octets between
    the status line and the final ".\r\n", with the leading dot of every line removed."""
    return (b"\r\n" + stuffed).replace(b"\r\n.", b"\r\n")[2:]


class Pop3Error(Exception):
    pass


class Pop3Client:
    def __init__(self, port, timeout_s=30, receive_buffer=None):
        """receive_buffer: SO_RCVBUF, set before connecting so that it bounds the window."""
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(timeout_s)
        try:
            self.sock.connect(("127.0.0.1", port))
        except BaseException:
            self.sock.close()
            raise
        self.buffer = bytearray()
        try:
            self.greeting = self.status()
        except BaseException:
            self.sock.close()
            raise
        assert self.greeting.startswith("+OK"), self.greeting

    @property
    def shard(self):
        """The shard that accepted the connection: the greeting's timestamp is
        <pid.shard.counter.ms@host> (pop3/service.cc)."""
        match = re.search(r"<\d+\.(\d+)\.\d+\.\d+@[^>]+>", self.greeting)
        assert match, self.greeting
        return int(match.group(1))

    @property
    def timestamp(self):
        return re.search(r"<[^>]+>", self.greeting).group(0)

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def receive(self):
        """Reads what has arrived (at least a byte) into the buffer."""
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("server closed the connection; unread: %r" % bytes(self.buffer[:200]))
        self.buffer += chunk

    def status(self):
        """One status line, without CRLF."""
        while True:
            end = self.buffer.find(b"\r\n")
            if end >= 0:
                break
            assert b"\n" not in self.buffer, "bare LF in a status line: %r" % bytes(self.buffer[:200])
            self.receive()
        line = bytes(self.buffer[:end]).decode("utf-8", "replace")
        del self.buffer[:end + 2]
        assert line.startswith("+OK") or line.startswith("-ERR") or line.startswith("+ "), \
            "malformed status line %r" % line
        return line

    def body(self):
        """The rest of a multi-line response, still dot-stuffed, up to but without the
        terminating ".\r\n"."""
        start = 0
        while True:
            if self.buffer.startswith(b".\r\n"):
                del self.buffer[:3]
                return b""
            end = self.buffer.find(b"\r\n.\r\n", start)
            if end >= 0:
                data = bytes(self.buffer[:end + 2])
                del self.buffer[:end + 5]
                return data
            start = max(0, len(self.buffer) - 4)
            self.receive()

    def command(self, line):
        self.send(line + "\r\n")
        return self.status()

    def ok(self, line):
        reply = self.command(line)
        if not reply.startswith("+OK"):
            raise Pop3Error("%s: %s" % (line, reply))
        return reply

    def multiline(self, line):
        """(status, stuffed body); the body only after +OK."""
        reply = self.command(line)
        return reply, (self.body() if reply.startswith("+OK") else None)

    def login(self, address, password):
        self.ok("USER " + address)
        return self.command("PASS " + password)

    def retr(self, number):
        """The message's octets, unstuffed; fails unless the stuffing was right."""
        self.send("RETR %d\r\n" % number)
        return self.message_reply()

    def message_reply(self):
        """Reads the response to a RETR sent earlier, as retr() does."""
        reply = self.status()
        if not reply.startswith("+OK"):
            raise Pop3Error("RETR: " + reply)
        stuffed = self.body()
        message = pop3_unstuff(stuffed)
        assert dot_stuff(message) == stuffed + b".\r\n", "RETR: wrong dot-stuffing"
        assert reply == "+OK %d octets" % len(message), (reply, len(message))
        return message

    def scan_listing(self, line):
        """LIST or UIDL without argument: {message number: value} (values as int)."""
        reply, body = self.multiline(line)
        if body is None:
            raise Pop3Error("%s: %s" % (line, reply))
        listing = {}
        for entry in body.decode().split("\r\n")[:-1]:
            number, value = entry.split(" ")
            assert int(number) not in listing, entry
            listing[int(number)] = int(value)
        return listing

    def wait_closed(self, timeout_s=30):
        """Reads until EOF; returns what came before it."""
        self.sock.settimeout(timeout_s)
        data = bytes(self.buffer)
        self.buffer.clear()
        while True:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return data
            if not chunk:
                return data
            data += chunk


# ---------------------------------------------------------------------------------------
# The server under test


# What AddressSanitizer, LeakSanitizer and UBSan print (UBSan goes on after a report).
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "WARNING: AddressSanitizer")


class Server:
    """A mailwing process on free ports with its own data_dir."""

    def __init__(self, test=None, users=None, durability="fsync", shards=2, extra=None,
                 data_dir=None, backend=None, start=True, command_prefix=None):
        self.tmp = tempfile.mkdtemp(prefix="mailwing-test-")
        # Runs the binary under another program, e.g. ["prlimit", "--nofile=256"].
        self.command_prefix = list(command_prefix or [])
        self.data_dir = data_dir or os.path.join(self.tmp, "data")
        self.backend = backend or BACKEND
        config = {
            "hostname": "mx.example.test",
            "data_dir": self.data_dir,
            "shards": shards,
            "durability": durability,
            "io_backend": self.backend,
            "smtp": {"listen": ["127.0.0.1:0"]},
            "pop3": {"listen": ["127.0.0.1:0"]},
            "domains": ["example.test", "catchall.test"],
            "users": users if users is not None else DEFAULT_USERS,
            "catch_all": {"catchall.test": "catch@catchall.test"},
        }
        for key, value in (extra or {}).items():
            if isinstance(value, dict) and isinstance(config.get(key), dict):
                config[key].update(value)
            else:
                config[key] = value
        self.config = config
        self.config_path = os.path.join(self.tmp, "config.json")
        with open(self.config_path, "w") as handle:
            json.dump(config, handle, indent=2)
        self.process = None
        self.log_path = os.path.join(self.tmp, "server.log")
        self.smtp_port = None
        self.pop3_port = None
        self.start_offset = 0
        if test is not None:
            test.addCleanup(self.cleanup)
        if start:
            self.start()

    def start(self, timeout_s=60):
        self.started_at = time.time()
        self._log = open(self.log_path, "ab")
        self.start_offset = self._log.tell()
        self.process = subprocess.Popen(self.command_prefix + [BINARY, "serve", "--config", self.config_path],
                                        stdout=self._log, stderr=self._log)
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            text = self.log()
            if " ready" in text:
                smtp = re.findall(r"smtp listening on [\d.]+:(\d+)", text)
                pop3 = re.findall(r"pop3 listening on [\d.]+:(\d+)", text)
                self.smtp_port = int(smtp[-1]) if smtp else None
                self.pop3_port = int(pop3[-1]) if pop3 else None
                return
            if self.process.poll() is not None:
                raise RuntimeError("mailwing exited with %s:\n%s" % (self.process.returncode, text))
            time.sleep(0.02)
        raise RuntimeError("mailwing did not get ready:\n" + self.log())

    def log(self, whole=False):
        """The log since the last start (or all of it)."""
        with open(self.log_path, "r", errors="replace") as handle:
            text = handle.read()
        return text if whole else text[self.start_offset:]

    def wait_for_log(self, pattern, timeout_s=10):
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            match = re.search(pattern, self.log())
            if match:
                return match
            time.sleep(0.02)
        raise AssertionError("%r not in the server log:\n%s" % (pattern, self.log()))

    def stop(self, timeout_s=60):
        """SIGTERM and wait; returns the exit code."""
        if self.process is None:
            return None
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout_s)
        self.process = None
        self._log.close()
        return code

    def kill(self):
        """SIGKILL: no chance to flush or clean up anything."""
        if self.process is None:
            return
        self.process.kill()
        self.process.wait()
        self.process = None
        self._log.close()

    def restart(self):
        code = self.stop()
        assert code == 0, "mailwing exited with %s on SIGTERM:\n%s" % (code, self.log())
        self.start()

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def assert_alive(self, test):
        test.assertTrue(self.alive(), "mailwing died:\n" + self.log(whole=True)[-4000:])

    def cleanup(self):
        """Stops the server with SIGTERM (so a sanitizer build also checks for leaks at
        exit) and fails if it did not exit cleanly or a sanitizer reported anything."""
        try:
            code = None
            if self.process is not None:
                try:
                    code = self.stop(timeout_s=60)
                except subprocess.TimeoutExpired:
                    self.kill()
                    raise AssertionError("mailwing did not stop on SIGTERM:\n" + self.log()[-4000:])
            text = self.log(whole=True) if os.path.exists(self.log_path) else ""
            for marker in SANITIZER_MARKERS:
                if marker in text:
                    at = text.index(marker)
                    raise AssertionError("sanitizer report in the server log:\n" + text[max(0, at - 200):at + 6000])
            if code not in (None, 0):
                raise AssertionError("mailwing exited with %s on SIGTERM:\n%s" % (code, text[-4000:]))
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def status_kb(self, field):
        """A /proc/PID/status field in kB (VmRSS: now, VmHWM: the peak so far)."""
        with open("/proc/%d/status" % self.process.pid) as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise KeyError(field)

    def cpu_seconds(self):
        """User and system CPU time the server has used so far."""
        with open("/proc/%d/stat" % self.process.pid) as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_path_for(self, address):
        return os.path.join(self.data_dir, "mailboxes", address + ".log")

    def records(self, address, crc_check_bytes_max=CRC_CHECK_BYTES_MAX):
        """All good records of the mailbox's log and whether the whole file is good."""
        path = self.log_path_for(address)
        if not os.path.exists(path):
            return [], True
        records, valid, size = read_log(path, crc_check_bytes_max)
        return records, valid == size

    def messages(self, address, crc_check_bytes_max=CRC_CHECK_BYTES_MAX):
        """Message records (kind 1) in the mailbox's log, oldest first."""
        records, _ = self.records(address, crc_check_bytes_max)
        return [r for r in records if r.kind == 1]

    def wait_for_messages(self, address, count, timeout_s=10):
        """Mailbox logs are written as the journal is; a 250 means both happened, but give
        a writer in another thread a moment anyway."""
        deadline = time.time() + timeout_s
        while True:
            found = self.messages(address)
            if len(found) >= count or time.time() > deadline:
                return found
            time.sleep(0.05)

    def live_messages(self, address, crc_check_bytes_max=CRC_CHECK_BYTES_MAX):
        """{uid: record} of the mailbox's messages that no tombstone deleted."""
        records, _ = self.records(address, crc_check_bytes_max)
        return live_messages(records)

    def password(self, address):
        return next(u["password"] for u in self.config["users"] if u["address"] == address)

    def pop3(self, address=None, timeout_s=30):
        """A POP3 connection; logged in (TRANSACTION state) when `address` is given."""
        return self._logged_in(Pop3Client(self.pop3_port, timeout_s), address)

    def pop3_on_shard(self, shard, address=None, timeout_s=30):
        """Like pop3(), on a connection that the given shard accepted (the kernel spreads
        connections over the shards' listening sockets by a hash of their ports)."""
        for _ in range(200):
            client = Pop3Client(self.pop3_port, timeout_s)
            if client.shard == shard:
                return self._logged_in(client, address)
            client.close()
        raise AssertionError("no connection landed on shard %d" % shard)

    def _logged_in(self, client, address):
        if address is not None:
            try:
                reply = client.login(address, self.password(address))
                if not reply.startswith("+OK"):
                    raise Pop3Error("login as %s: %s" % (address, reply))
            except BaseException:
                client.close()
                raise
        return client

    def deliver(self, address, messages, sender="sender@client.test"):
        """Sends `messages` (each made by make_message, so with a unique Message-ID) to
        `address` with smtplib and returns their payloads as stored: the trace lines the
        server prepends, then the message exactly as sent (checked)."""
        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=120) as client:
            for message in messages:
                refused = client.sendmail(sender, [address], message)
                assert refused == {}, refused
        stored = {}
        # Payload CRCs are not recomputed (slow in Python): the bytes are compared instead.
        for record in self.live_messages(address, crc_check_bytes_max=0).values():
            tag = _message_id_of(record.body)
            if tag:
                stored.setdefault(tag, []).append(record)
        payloads = []
        for message in messages:
            tag = _message_id_of(message)
            records = stored.get(tag, [])
            assert len(records) == 1, "%s stored %d times" % (tag, len(records))
            assert records[0].body == message, "%s stored differently" % tag
            payloads.append(records[0].payload)
        return payloads

    def compact(self):
        """tools/mailwing-compact: asks the server to compact now (SIGUSR1)."""
        done = subprocess.run([COMPACT_TOOL, self.data_dir], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stdout + done.stderr

    def connect_smtp(self, timeout_s=10):
        return socket.create_connection(("127.0.0.1", self.smtp_port), timeout=timeout_s)

    def client(self, timeout_s=10):
        return SmtpClient(self.smtp_port, timeout_s)


def live_messages(records):
    """{uid: record} of the message records that no tombstone among `records` deleted."""
    deleted = set()
    for record in records:
        if record.kind == 2:
            deleted.update(struct.unpack("<%dQ" % (len(record.payload) // 8), record.payload))
    return {r.uid: r for r in records if r.kind == 1 and r.uid not in deleted}


COMPACT_TOOL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools",
                            "mailwing-compact")


def run_binary(args, timeout_s=30, **kwargs):
    """Runs mailwing with `args`; returns the CompletedProcess (text mode)."""
    return subprocess.run([BINARY] + args, capture_output=True, text=True, timeout=timeout_s,
                          **kwargs)


_sanitized = None


def sanitized():
    """True for an ASan/UBSan build, which is slower and uses more memory."""
    global _sanitized
    if _sanitized is None:
        with open(BINARY, "rb") as handle:
            _sanitized = b"__asan_init" in handle.read()
    return _sanitized


def expected_failure_on(backend):
    """unittest.expectedFailure for a bug seen with one I/O backend only: with the other
    the test passes, which expectedFailure would count as an unexpected success. The
    backend is known once main() has read the command line; main() sets the mark then."""
    def mark(test):
        test.expected_failure_backend = backend
        return test
    return mark


def main():
    global BINARY, BACKEND
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--backend", default="auto")
    args, rest = parser.parse_known_args()
    BINARY = os.path.abspath(args.binary)
    BACKEND = args.backend
    for value in vars(sys.modules["__main__"]).values():
        if isinstance(value, type) and issubclass(value, unittest.TestCase):
            for test in vars(value).values():
                if getattr(test, "expected_failure_backend", None) == BACKEND:
                    test.__unittest_expecting_failure__ = True
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
