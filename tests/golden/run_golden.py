#!/usr/bin/env python3
"""Golden SMTP and POP3 dialogues, replayed against the real mailwing binary.

    run_golden.py --binary PATH --backend io_uring|epoll --dialogues DIR
                  [--protocol smtp|pop3] [--only NAME]

Starts `<binary> serve --config <tmp>/config.json` (DIR/config.json with data_dir,
io_backend and free ports filled in), replays every DIR/*.dialog on fresh connections,
compares the server's replies with the expected lines and prints a unified diff for every
dialogue that differs. Exits 0 only if every dialogue passed. Python 3 standard library
only. Like Postfix's smtpd_check.in/.ref, the dialogue files are the specification.

The dialogues talk to the SMTP listener, or with --protocol pop3 to the POP3 one (the
default is pop3 when DIR is named "pop3", smtp otherwise); =DELIVER always uses SMTP.

Dialogue format (one file per behaviour, tests/golden/<protocol>/<name>.dialog):

    # comment                 ignored, as are blank lines
    C: text                   a client line; CRLF is added. "C:" alone sends an empty line.
                              {DIGEST password} in it becomes the APOP digest (RFC 1939 §7):
                              lower-case hex MD5 of the <timestamp> in this connection's
                              first reply line (the greeting) followed by the password.
    R: text                   raw client bytes, no CRLF added. Escapes: \\r \\n \\t \\0 \\\\ \\xHH
    S: text                   one expected reply line, without its CRLF, compared exactly
                              (trailing spaces count: "S: 334 " expects "334 "). Placeholders:
                              {ID} matches a queue id ([0-9A-F]+), {*} anything to end of line,
                              {TAB} one tab, {SIZE i} the size in octets of the message the
                              i-th =DELIVER of this dialogue stored (as the mailbox log holds
                              it, trace lines included), {SIZE i+j+...} the sum of such sizes.
    C2: / R2: / S2:           the same on a second connection, open at the same time as the
                              first (opened at its first line, so S2: comes first for the
                              greeting). Lines without a 2 are for the first connection.
    =CLOSED [2]               the server must close the connection now: EOF after the replies
                              so far. Only =RECONNECT or = lines about the store may follow
                              for that connection.
    =HALFCLOSE [2]            send the client bytes collected so far, then shut down the
                              client's sending side (shutdown SHUT_WR): the client has said
                              all it will say but still reads. Only S: lines, =CLOSED and
                              =RECONNECT may follow for that connection.
    =RECONNECT [2]            end the connection (if the server has not: half-close it and
                              read to EOF, so a reply nobody expected shows in the diff, and
                              the server must then close) and start a new one at its next line.
                              Without a QUIT this is a client that drops the connection.
    =DELIVER <address> <escaped bytes>
                              deliver these bytes (escapes as in R:, CRLF line ends, ending in
                              CRLF) as one message to <address> over SMTP, from
                              <sender@example.org> after EHLO golden.test, and check that the
                              mailbox log gained exactly that message. Runs in dialogue order;
                              before the first C:/S: line it is setup for a POP3 dialogue.
    =DELAYED <ms>             (before an S: line) that reply arrives at least <ms> after the
                              client's last write on its connection.
    =STORED <address> <n>     this dialogue delivered exactly n messages to the mailbox log
                              <data_dir>/mailboxes/<address>.log (counted as new records since
                              the dialogue started: the server is shared by all dialogues).
    =BODY <address> <i> <escaped bytes>
                              the i-th (1-based) of those new messages is exactly these bytes
                              (same escapes as R:), after the Return-Path: and Received: lines
                              the server prepends.
    =LIVE <address> <n>       after the dialogue the mailbox log holds exactly n messages that
                              no tombstone deleted (checked on the file, not over POP3).
    =CONFIG <file>            (before any other line) run this dialogue on a server started
                              with DIR/<file> instead of DIR/config.json.
    =FLUSH                    send the client bytes collected so far now, as their own write,
                              and pause briefly: splits a command or a body across reads.
    =XFAIL <reason>           a known server bug: the dialogue states the correct behaviour,
                              the server does not (yet) do it. A failure is reported (with its
                              diff) but does not fail the run; a pass fails the run, so that the
                              marker is removed once the server is fixed.

Client bytes (C: and R: lines) are collected per connection and sent, one write per
connection, when the next S: line (or =CLOSED, =HALFCLOSE, =RECONNECT, =DELIVER, =FLUSH,
or the end of the dialogue) is reached, so several C: lines before their S: lines express pipelining.
Then one reply line is read per S: line. At the end of a dialogue the client half-closes
(shutdown SHUT_WR) each open connection and reads to EOF: any reply nobody expected shows
up in the diff, and the server must close once the client has.
"""

import argparse
import difflib
import fnmatch
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

DEFAULT_CONFIG = "config.json"
FLUSH_PAUSE_S = 0.05
CONNECTIONS = (1, 2)
DELIVER_HELO = "golden.test"
DELIVER_SENDER = "sender@example.org"

# ---------------------------------------------------------------------------------------
# Dialogue files


class DialogueError(Exception):
    pass


_ESCAPES = {"r": b"\r", "n": b"\n", "t": b"\t", "0": b"\0", "\\": b"\\"}


def unescape(text):
    """R: and =BODY text to bytes: \\r \\n \\t \\0 \\\\ \\xHH; other characters as UTF-8."""
    out = bytearray()
    i = 0
    while i < len(text):
        c = text[i]
        if c != "\\":
            out += c.encode("utf-8")
            i += 1
            continue
        if i + 1 == len(text):
            raise DialogueError("a lone backslash ends the line")
        e = text[i + 1]
        if e in _ESCAPES:
            out += _ESCAPES[e]
            i += 2
        elif e == "x":
            digits = text[i + 2:i + 4]
            if not re.fullmatch(r"[0-9A-Fa-f]{2}", digits):
                raise DialogueError("\\x needs two hex digits")
            out.append(int(digits, 16))
            i += 4
        else:
            raise DialogueError("unknown escape \\%s" % e)
    return bytes(out)


_PLACEHOLDER = re.compile(r"(\{ID\}|\{\*\}|\{TAB\}|\{SIZE [^}]*\})")
_SIZE = re.compile(r"\{SIZE ([1-9][0-9]*(?:\+[1-9][0-9]*)*)\}")
_DIGEST = re.compile(r"\{DIGEST ([^}]*)\}")


def size_indices(placeholder):
    """"{SIZE 1+3}" -> [1, 3]; None if it is not a well-formed {SIZE ...}."""
    match = _SIZE.fullmatch(placeholder)
    return [int(i) for i in match.group(1).split("+")] if match else None


def reply_pattern(expected, sizes=None):
    """An expected S: text as a regex: {ID}, {*}, {TAB} and {SIZE ...} are placeholders
    (sizes: =DELIVER index -> octets), the rest literal."""
    regex = ""
    for part in _PLACEHOLDER.split(expected):
        if part == "{ID}":
            regex += "[0-9A-F]+"
        elif part == "{*}":
            regex += ".*"
        elif part == "{TAB}":
            regex += "\t"
        elif part.startswith("{SIZE "):
            indices = size_indices(part)
            if indices is None or sizes is None or any(i not in sizes for i in indices):
                regex += "(?!)"  # a delivery that failed: nothing matches
            else:
                regex += str(sum(sizes[i] for i in indices))
        else:
            regex += re.escape(part)
    return re.compile(regex, re.DOTALL)


def connection_suffix(conn):
    return "" if conn == 1 else str(conn)


class Dialogue:
    """Steps, in file order:
        ("send", conn, template, shown)   template: bytes, or str with {DIGEST ...}
        ("expect", conn, text, min_ms)     min_ms: None or the =DELAYED before it
        ("closed", conn) / ("halfclose", conn) / ("reconnect", conn) / ("flush",)
        ("deliver", address, bytes, index, shown)
    """

    def __init__(self, path):
        self.path = path
        self.name = os.path.basename(path)[:-len(".dialog")]
        self.config = DEFAULT_CONFIG
        self.source = None   # the client address (source_address), set by main
        self.xfail = None
        self.steps = []
        self.stored = {}     # address -> n
        self.bodies = []     # (address, index, bytes)
        self.live = {}       # address -> n
        self.deliveries = 0
        self._closed = {conn: False for conn in CONNECTIONS}
        self._half_closed = {conn: False for conn in CONNECTIONS}
        self._delay = None
        self._parse()

    def _parse(self):
        with open(self.path, encoding="utf-8") as handle:
            lines = handle.read().split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        for number, line in enumerate(lines, 1):
            try:
                self._parse_line(line)
            except DialogueError as error:
                raise DialogueError("%s:%d: %s" % (self.path, number, error)) from None
        if self._delay is not None:
            raise DialogueError("%s: =DELAYED without an S: line after it" % self.path)
        if not any(step[0] in ("expect", "closed") for step in self.steps):
            raise DialogueError("%s: no S: line and no =CLOSED" % self.path)

    def _parse_line(self, line):
        if line.endswith("\r"):
            raise DialogueError("CRLF line end in a dialogue file (use LF)")
        if line == "" or line.startswith("#"):
            return
        tag = re.match(r"([CRS])(2?):", line)
        if tag:
            self._parse_client_or_server(line, tag)
            return
        words = line.split(" ")
        directive = words[0]
        if directive in ("=CLOSED", "=HALFCLOSE", "=RECONNECT") and len(words) <= 2:
            conn = self._connection_argument(words)
            if directive == "=CLOSED":
                if self._closed[conn]:
                    raise DialogueError("=CLOSED twice")
                self._closed[conn] = True
                self.steps.append(("closed", conn))
            elif directive == "=HALFCLOSE":
                if self._closed[conn] or self._half_closed[conn]:
                    raise DialogueError("=HALFCLOSE after =CLOSED or =HALFCLOSE")
                self._half_closed[conn] = True
                self.steps.append(("halfclose", conn))
            else:
                self._closed[conn] = self._half_closed[conn] = False
                self.steps.append(("reconnect", conn))
            return
        if directive == "=FLUSH" and len(words) == 1:
            self.steps.append(("flush",))
            return
        if directive == "=DELAYED" and len(words) == 2 and words[1].isdigit():
            if self._delay is not None:
                raise DialogueError("=DELAYED twice before an S: line")
            self._delay = int(words[1])
            return
        if directive == "=DELIVER" and len(words) >= 3:
            message = unescape(line[len("=DELIVER %s " % words[1]):])
            if not message.endswith(b"\r\n"):
                raise DialogueError("=DELIVER: the message must end with \\r\\n")
            self.deliveries += 1
            self.steps.append(("deliver", words[1], message, self.deliveries, line))
            return
        if directive in ("=STORED", "=LIVE") and len(words) == 3 and words[2].isdigit():
            table = self.stored if directive == "=STORED" else self.live
            if words[1] in table:
                raise DialogueError("%s twice for %s" % (directive, words[1]))
            table[words[1]] = int(words[2])
            return
        if directive == "=BODY" and len(words) >= 3 and words[2].isdigit() and int(words[2]) >= 1:
            prefix = "=BODY %s %s" % (words[1], words[2])
            if not line.startswith(prefix + " ") and line != prefix:
                raise DialogueError("=BODY <address> <index> <escaped bytes>")
            self.bodies.append((words[1], int(words[2]), unescape(line[len(prefix) + 1:])))
            return
        if directive == "=CONFIG" and len(words) == 2:
            if self.steps:
                raise DialogueError("=CONFIG must come before the dialogue")
            self.config = words[1]
            return
        if directive == "=XFAIL" and len(words) >= 2:
            self.xfail = line[len("=XFAIL "):]
            return
        raise DialogueError("cannot parse %r" % line)

    @staticmethod
    def _connection_argument(words):
        if len(words) == 1:
            return 1
        if words[1] not in ("1", "2"):
            raise DialogueError("%s takes no argument or 2 (the second connection)" % words[0])
        return int(words[1])

    def _parse_client_or_server(self, line, tag):
        kind, conn = tag.group(1), int(tag.group(2) or 1)
        rest = line[tag.end():]
        if rest and not rest.startswith(" "):
            raise DialogueError("expected a space after %r" % tag.group(0))
        text = rest[1:]
        if self._closed[conn]:
            raise DialogueError("%s after =CLOSED%s (=RECONNECT first)"
                                % (tag.group(0), "" if conn == 1 else " 2"))
        if kind != "S" and self._half_closed[conn]:
            raise DialogueError("%s after =HALFCLOSE%s" % (tag.group(0), "" if conn == 1 else " 2"))
        if kind != "S" and self._delay is not None:
            raise DialogueError("=DELAYED must be followed by an S: line")
        if kind == "C":
            if _DIGEST.search(text):
                template = text + "\r\n"  # resolved when sent, from that connection's greeting
            else:
                template = text.encode("utf-8") + b"\r\n"
            self.steps.append(("send", conn, template, line))
        elif kind == "R":
            self.steps.append(("send", conn, unescape(text), line))
        else:
            for placeholder in re.findall(r"\{SIZE[^}]*\}", text):
                indices = size_indices(placeholder)
                if indices is None:
                    raise DialogueError("malformed %s (write {SIZE 1} or {SIZE 1+2})" % placeholder)
                if max(indices) > self.deliveries:
                    raise DialogueError("%s: only %d =DELIVER line(s) above"
                                        % (placeholder, self.deliveries))
            self.steps.append(("expect", conn, text, self._delay))
            self._delay = None


# ---------------------------------------------------------------------------------------
# Mailbox logs (format: include/mailwing/store/record.hh)


def _crc32c_table():
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc32c_table()
RECORD_MAGIC = 0x314C574D  # "MWL1"
RECORD_HEADER = struct.Struct("<IBBHQQQII")  # magic type flags reserved uid arrival size crcs
RECORD_MESSAGE = 1
RECORD_TOMBSTONE = 2


def crc32c(data):
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def read_records(path):
    """(type, uid, payload) for every record in a mailbox log, in file order. A bad record
    is an error here: the server is running and has acknowledged everything it wrote."""
    if not os.path.exists(path):
        return []
    with open(path, "rb") as handle:
        data = handle.read()
    records = []
    offset = 0
    while offset < len(data):
        if offset + RECORD_HEADER.size > len(data):
            raise ValueError("%s: torn record header at offset %d" % (path, offset))
        magic, kind, _flags, _reserved, uid, _arrival, size, payload_crc, header_crc = \
            RECORD_HEADER.unpack_from(data, offset)
        if magic != RECORD_MAGIC or crc32c(data[offset:offset + 36]) != header_crc:
            raise ValueError("%s: bad record header at offset %d" % (path, offset))
        payload = data[offset + 40:offset + 40 + size]
        if len(payload) != size or crc32c(payload) != payload_crc:
            raise ValueError("%s: bad payload at offset %d" % (path, offset))
        if kind not in (RECORD_MESSAGE, RECORD_TOMBSTONE):
            raise ValueError("%s: record type %d at offset %d" % (path, kind, offset))
        if kind == RECORD_TOMBSTONE and size % 8:
            raise ValueError("%s: tombstone of %d bytes at offset %d" % (path, size, offset))
        records.append((kind, uid, payload))
        offset += 40 + size
    return records


def read_messages(path):
    """The message payloads in a mailbox log, oldest first (deleted ones too)."""
    return [payload for kind, _uid, payload in read_records(path) if kind == RECORD_MESSAGE]


def live_messages(path):
    """The message payloads that no tombstone in the log deleted."""
    records = read_records(path)
    deleted = set()
    for kind, _uid, payload in records:
        if kind == RECORD_TOMBSTONE:
            deleted.update(struct.unpack("<%dQ" % (len(payload) // 8), payload))
    return [payload for kind, uid, payload in records
            if kind == RECORD_MESSAGE and uid not in deleted]


def strip_trace(payload):
    """The message without the Return-Path: and Received: lines (the latter folded)."""
    text = payload
    for header in (b"Return-Path:", b"Received:"):
        if not text.startswith(header):
            raise ValueError("stored message does not start with %r: %r" % (header, text[:80]))
        end = text.index(b"\r\n")
        while text[end + 2:end + 3] in (b"\t", b" "):
            end = text.index(b"\r\n", end + 2)
        text = text[end + 2:]
    return text


# ---------------------------------------------------------------------------------------
# The server


class Server:
    def __init__(self, binary, backend, config_path, protocol):
        self.process = None
        self._log = None
        self.tmp = tempfile.mkdtemp(prefix="mailwing-golden-")
        try:
            self._start(binary, backend, config_path, protocol)
        except BaseException:
            if self.process is not None and self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            if self._log is not None:
                self._log.close()
            self.cleanup()
            raise

    def _start(self, binary, backend, config_path, protocol):
        self.data_dir = os.path.join(self.tmp, "data")
        with open(config_path, encoding="utf-8") as handle:
            config = json.load(handle)
        config["data_dir"] = self.data_dir
        config["io_backend"] = backend
        config.setdefault("smtp", {})["listen"] = ["127.0.0.1:0"]
        if protocol == "pop3":
            config.setdefault("pop3", {})
        if "pop3" in config:
            config["pop3"]["listen"] = ["127.0.0.1:0"]
        self.config_path = os.path.join(self.tmp, "config.json")
        with open(self.config_path, "w", encoding="utf-8") as handle:
            json.dump(config, handle, indent=2)
        self.log_path = os.path.join(self.tmp, "server.log")
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen([binary, "serve", "--config", self.config_path],
                                        stdin=subprocess.DEVNULL, stdout=self._log,
                                        stderr=self._log)
        self.ports = {}
        wanted = ["smtp"] + (["pop3"] if "pop3" in config else [])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            text = self.log()
            for name in wanted:
                ports = re.findall(r"\b%s listening on 127\.0\.0\.1:(\d+)" % name, text)
                if ports:
                    self.ports[name] = int(ports[0])
            if len(self.ports) == len(wanted) and re.search(r"\bready\b", text):
                return
            if self.process.poll() is not None:
                raise RuntimeError("mailwing exited with %s before it was ready:\n%s"
                                   % (self.process.returncode, text))
            time.sleep(0.01)
        self.process.kill()
        raise RuntimeError("mailwing did not log 'ready' and its ports within 20 s:\n"
                           + self.log())

    def log(self):
        with open(self.log_path, "r", encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def alive(self):
        return self.process.poll() is None

    def mailbox(self, address):
        return os.path.join(self.data_dir, "mailboxes", address + ".log")

    def stop(self):
        """SIGTERM, as an operator would; returns the exit code (None if it had to be killed)."""
        code = self.process.poll()
        if code is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                code = self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                code = None
        self._log.close()
        return code

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


# ---------------------------------------------------------------------------------------
# Replaying one dialogue


def source_address(index):
    """The loopback address the index-th dialogue talks from. Each dialogue has its own, so
    that the server's per-client-address login throttle (failed logins space the next
    check) carries nothing from one dialogue into the next."""
    high, low = divmod(index, 250)
    return "127.10.%d.%d" % (high, low + 1)


class Connection:
    def __init__(self, port, timeout_s, source=None):
        """source: the local address to connect from (None: the kernel picks 127.0.0.1)."""
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s,
                                             source_address=(source, 0) if source else None)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout_s = timeout_s
        self.buffer = b""
        self.eof = False
        self.greeting = None         # the first line read
        self.last_send = time.monotonic()
        self._consumed = 0           # bytes taken out of the buffer so far
        self._arrivals = []          # (bytes received in all, time) per recv
        self.arrival = None          # when the last line read had fully arrived

    def send(self, data):
        self.sock.sendall(data)
        self.last_send = time.monotonic()

    def read_line(self):
        """("line", text) / ("eof", None) / ("timeout", None). Only CRLF ends a line; a bare
        LF or a last line without CRLF is shown as such so that it cannot match."""
        deadline = time.monotonic() + self.timeout_s
        while True:
            newline = self.buffer.find(b"\n")
            if newline >= 0:
                raw, self.buffer = self.buffer[:newline], self.buffer[newline + 1:]
                self._took(newline + 1)
                if raw.endswith(b"\r"):
                    return self._line(decode(raw[:-1]))
                return self._line(decode(raw) + " [ended by a bare LF]")
            if self.eof:
                if self.buffer:
                    raw, self.buffer = self.buffer, b""
                    self._took(len(raw))
                    return self._line(decode(raw) + " [no CRLF before EOF]")
                return "eof", None
            left = deadline - time.monotonic()
            if left <= 0:
                return "timeout", None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return "timeout", None
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.eof = True
            self.buffer += chunk
            self._arrivals.append((self._consumed + len(self.buffer), time.monotonic()))

    def _took(self, count):
        self._consumed += count
        while self._arrivals and self._arrivals[0][0] < self._consumed:
            self._arrivals.pop(0)
        self.arrival = self._arrivals[0][1] if self._arrivals else time.monotonic()

    def _line(self, text):
        if self.greeting is None:
            self.greeting = text
        return "line", text

    def close(self):
        self.sock.close()


def decode(raw):
    return raw.decode("utf-8", errors="backslashreplace")


def shorten(text, limit=160):
    return text if len(text) <= limit else "%s... (%d characters)" % (text[:limit], len(text))


class Result:
    def __init__(self, dialogue):
        self.dialogue = dialogue
        self.expected = []   # transcript lines
        self.actual = []
        self.problems = []   # store checks and the like, already worded
        self.sizes = {}      # =DELIVER index -> octets stored
        self.elapsed_s = 0.0

    @property
    def passed(self):
        return self.expected == self.actual and not self.problems

    def both(self, line):
        self.expected.append(line)
        self.actual.append(line)

    def report(self):
        lines = []
        if self.expected != self.actual:
            lines += difflib.unified_diff(self.expected, self.actual,
                                          "expected: " + self.dialogue.path, "actual: server replies",
                                          lineterm="", n=4)
        lines += self.problems
        if self.sizes:
            lines.append("sizes: " + ", ".join("{SIZE %d} = %d" % item
                                                 for item in sorted(self.sizes.items())))
        return lines


def replay(dialogue, server, port, timeout_s):
    result = Result(dialogue)
    try:
        before = {address: len(read_messages(server.mailbox(address)))
                  for address in set(dialogue.stored) | {body[0] for body in dialogue.bodies}}
    except ValueError as error:
        result.problems.append("before the dialogue: %s" % error)
        return result
    started = time.monotonic()
    Replay(dialogue, server, port, timeout_s, result).run()
    result.elapsed_s = time.monotonic() - started
    _check_store(dialogue, server, before, result)
    return result


class Replay:
    def __init__(self, dialogue, server, port, timeout_s, result):
        self.dialogue = dialogue
        self.server = server
        self.port = port
        self.timeout_s = timeout_s
        self.result = result
        self.conns = {conn: None for conn in CONNECTIONS}
        # The connection is over (EOF seen, a timeout, a send failed, it could not be opened).
        self.ended = {conn: False for conn in CONNECTIONS}
        self.pending = {conn: bytearray() for conn in CONNECTIONS}

    def run(self):
        try:
            actions = {"send": self._send, "expect": self._expect, "closed": self._closed,
                       "halfclose": self._halfclose, "reconnect": self._reconnect,
                       "flush": self._flush_step,
                       "deliver": self._deliver}
            for step in self.dialogue.steps:
                actions[step[0]](*step[1:])
            self._flush()
            for conn in CONNECTIONS:
                self._finish(conn, None)
        finally:
            for sock in self.conns.values():
                if sock is not None:
                    sock.close()

    def _open(self, conn):
        """The connection, opened at its first use; None once it is over."""
        if self.conns[conn] is None and not self.ended[conn]:
            try:
                self.conns[conn] = Connection(self.port, self.timeout_s, self.dialogue.source)
            except OSError as error:
                self.result.actual.append("(cannot connect: %s)" % error)
                self.ended[conn] = True
        return None if self.ended[conn] else self.conns[conn]

    def _flush(self):
        for conn in CONNECTIONS:
            if self.pending[conn] and not self.ended[conn] and self.conns[conn] is not None:
                try:
                    self.conns[conn].send(bytes(self.pending[conn]))
                except OSError as error:
                    self.result.actual.append("(sending failed: %s)" % error)
                    self.ended[conn] = True
            self.pending[conn].clear()

    def _send(self, conn, template, shown):
        self.result.both(shorten(shown))
        sock = self._open(conn)
        if sock is None:
            return
        if isinstance(template, str):
            template = self._resolve_digests(sock, template)
        self.pending[conn] += template

    def _resolve_digests(self, sock, template):
        timestamp = re.search(r"<[^<>]*>", sock.greeting or "")
        if timestamp is None:
            self.result.problems.append("{DIGEST}: no <timestamp> in this connection's first "
                                        "reply line (%r)" % sock.greeting)
            return template.encode("utf-8")
        def digest(match):
            return hashlib.md5((timestamp.group(0) + match.group(1)).encode("utf-8")).hexdigest()
        return _DIGEST.sub(digest, template).encode("utf-8")

    def _expect(self, conn, text, min_ms):
        self._flush()
        tag = "S%s: " % connection_suffix(conn)
        if min_ms is not None:
            self.result.expected.append("=DELAYED %d" % min_ms)
        self.result.expected.append(tag + text)
        sock = self._open(conn)
        if sock is None:
            return
        status, line = sock.read_line()
        if status == "line":
            if min_ms is not None:
                waited_ms = (sock.arrival - sock.last_send) * 1000
                self.result.actual.append("=DELAYED %d" % min_ms if waited_ms >= min_ms else
                                          "=DELAYED %d: answered after %.0f ms" % (min_ms, waited_ms))
            matched = reply_pattern(text, self.result.sizes).fullmatch(line) is not None
            # A line that matches its pattern is shown as the pattern: diffs show only
            # real differences.
            self.result.actual.append(tag + (text if matched else line))
        elif status == "eof":
            self.result.actual.append("=CLOSED" + ("" if conn == 1 else " 2"))
            self.ended[conn] = True
        else:
            self.result.actual.append("(no reply within %g s)" % sock.timeout_s)
            self.ended[conn] = True

    def _closed(self, conn):
        self._flush()
        closed = "=CLOSED" + ("" if conn == 1 else " 2")
        self.result.expected.append(closed)
        sock = self._open(conn)
        if sock is None:
            return
        self._read_to_eof(conn, "(connection still open %g s later)" % sock.timeout_s, closed)
        self.ended[conn] = True

    def _halfclose(self, conn):
        self._flush()
        line = "=HALFCLOSE" + ("" if conn == 1 else " 2")
        self.result.both(line)
        sock = self._open(conn)
        if sock is not None:
            try:
                sock.sock.shutdown(socket.SHUT_WR)
            except OSError as error:
                self.result.actual.append("(shutdown failed: %s)" % error)
                self.ended[conn] = True

    def _reconnect(self, conn):
        self._flush()
        line = "=RECONNECT" + ("" if conn == 1 else " 2")
        self.result.expected.append(line)
        self._finish(conn, None)
        self.result.actual.append(line)
        if self.conns[conn] is not None:
            self.conns[conn].close()
        self.conns[conn] = None
        self.ended[conn] = False

    def _finish(self, conn, closed_line):
        """Half-close an open connection and read to EOF: whatever the server still says
        was not expected, and it must close once the client has."""
        sock = self.conns[conn]
        if sock is None or self.ended[conn]:
            return
        try:
            sock.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self._read_to_eof(conn, "(still open %g s after the client closed)" % sock.timeout_s,
                          closed_line)
        self.ended[conn] = True

    def _read_to_eof(self, conn, timeout_text, closed_line):
        sock = self.conns[conn]
        tag = "S%s: " % connection_suffix(conn)
        while True:
            status, line = sock.read_line()
            if status == "line":
                self.result.actual.append(tag + line)
            elif status == "eof":
                if closed_line:
                    self.result.actual.append(closed_line)
                return
            else:
                self.result.actual.append(timeout_text)
                return

    def _flush_step(self):
        self._flush()
        time.sleep(FLUSH_PAUSE_S)

    def _deliver(self, address, message, index, shown):
        self._flush()
        self.result.both(shorten(shown))
        try:
            self.result.sizes[index] = deliver(self.server, address, message, self.timeout_s)
        except (OSError, ValueError) as error:
            self.result.actual.append("(=DELIVER failed: %s)" % error)


def deliver(server, address, message, timeout_s):
    """Delivers message (unstuffed, CRLF lines) to address over SMTP and returns the size
    of the payload the mailbox log gained. ValueError/OSError if anything goes wrong."""
    path = server.mailbox(address.lower())
    before = len(read_messages(path))
    conn = Connection(server.ports["smtp"], timeout_s)
    try:
        def command(line, code):
            if line is not None:
                conn.send(line)
            while True:
                status, text = conn.read_line()
                if status != "line":
                    raise ValueError("SMTP %s after %r" % (status, line))
                if not text.startswith(code):
                    raise ValueError("SMTP %r after %r" % (text, line))
                if text[3:4] != "-":
                    return
        command(None, "220")
        command(b"EHLO " + DELIVER_HELO.encode() + b"\r\n", "250")
        command(b"MAIL FROM:<" + DELIVER_SENDER.encode() + b">\r\n", "250")
        command(b"RCPT TO:<" + address.encode("utf-8") + b">\r\n", "250")
        command(b"DATA\r\n", "354")
        stuffed = re.sub(rb"(?m)^\.", b"..", message)
        command(stuffed + b".\r\n", "250")
        command(b"QUIT\r\n", "221")
    finally:
        conn.close()
    messages = read_messages(path)
    if len(messages) != before + 1:
        raise ValueError("the mailbox log %s gained %d messages, not 1"
                         % (path, len(messages) - before))
    if strip_trace(messages[-1]) != message:
        raise ValueError("stored %r, not the message" % messages[-1])
    return len(messages[-1])


def _check_store(dialogue, server, before, result):
    new = {}
    for address in before:
        try:
            new[address] = read_messages(server.mailbox(address))[before[address]:]
        except ValueError as error:
            result.problems.append("mailbox log of %s: %s" % (address, error))
            return
    for address, count in sorted(dialogue.stored.items()):
        if len(new[address]) != count:
            result.problems.append("=STORED %s %d: this dialogue stored %d message(s) there"
                                   % (address, count, len(new[address])))
    for address, index, expected in dialogue.bodies:
        if index > len(new[address]):
            result.problems.append("=BODY %s %d: only %d new message(s) in that mailbox"
                                   % (address, index, len(new[address])))
            continue
        try:
            body = strip_trace(new[address][index - 1])
        except ValueError as error:
            result.problems.append("=BODY %s %d: %s" % (address, index, error))
            continue
        if body != expected:
            result.problems.append("=BODY %s %d differs:\n  expected %r\n  stored   %r"
                                   % (address, index, expected, body))
    for address, count in sorted(dialogue.live.items()):
        try:
            live = len(live_messages(server.mailbox(address)))
        except ValueError as error:
            result.problems.append("mailbox log of %s: %s" % (address, error))
            continue
        if live != count:
            result.problems.append("=LIVE %s %d: the mailbox log holds %d undeleted message(s)"
                                   % (address, count, live))


# ---------------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", required=True)
    parser.add_argument("--backend", required=True, choices=["io_uring", "epoll", "auto"])
    parser.add_argument("--dialogues", required=True, help="directory of *.dialog files")
    parser.add_argument("--protocol", choices=["smtp", "pop3"],
                        help="which listener the dialogues talk to (default: pop3 if the "
                             "directory is named pop3, else smtp)")
    parser.add_argument("--only", action="append", default=[],
                        help="run only this dialogue (name without .dialog; a glob; repeatable)")
    parser.add_argument("--timeout", type=float, default=5.0,
                        help="seconds to wait for each expected reply (default 5)")
    parser.add_argument("--keep", action="store_true", help="keep the server's data_dir and log")
    args = parser.parse_args()
    binary = os.path.abspath(args.binary)
    protocol = args.protocol or (
        "pop3" if os.path.basename(os.path.normpath(args.dialogues)) == "pop3" else "smtp")
    started = time.monotonic()
    if not os.access(binary, os.X_OK):
        print("run_golden: %s is not an executable file" % binary, file=sys.stderr)
        return 2

    try:
        names = sorted(n for n in os.listdir(args.dialogues) if n.endswith(".dialog"))
        dialogues = [Dialogue(os.path.join(args.dialogues, n)) for n in names]
        for index, dialogue in enumerate(dialogues):
            dialogue.source = source_address(index)
    except (OSError, DialogueError) as error:
        print("run_golden: %s" % error, file=sys.stderr)
        return 2
    if args.only:
        dialogues = [d for d in dialogues if any(fnmatch.fnmatchcase(d.name, p) for p in args.only)]
        if not dialogues:
            print("run_golden: no dialogue matches %s" % ", ".join(args.only), file=sys.stderr)
            return 2

    by_config = {}
    for dialogue in dialogues:
        by_config.setdefault(dialogue.config, []).append(dialogue)

    counts = {"ok": 0, "FAIL": 0, "XFAIL": 0, "XPASS": 0}
    for config_name, group in by_config.items():
        config_path = os.path.join(args.dialogues, config_name)
        try:
            server = Server(binary, args.backend, config_path, protocol)
        except (OSError, ValueError, RuntimeError) as error:
            print("FAIL  cannot start the server with %s: %s" % (config_path, error))
            counts["FAIL"] += len(group)
            continue
        try:
            group_failed = False
            for dialogue in group:
                if not server.alive():
                    print("FAIL  %s: the server is not running (exit code %s)"
                          % (dialogue.name, server.process.returncode))
                    counts["FAIL"] += 1
                    group_failed = True
                    continue
                result = replay(dialogue, server, server.ports[protocol], args.timeout)
                if dialogue.xfail is None:
                    status = "ok" if result.passed else "FAIL"
                else:
                    status = "XPASS" if result.passed else "XFAIL"
                counts[status] += 1
                print("%-5s %s (%.0f ms)" % (status, dialogue.name, result.elapsed_s * 1000))
                if status == "XFAIL":
                    print("      known server bug: %s" % dialogue.xfail)
                if status == "XPASS":
                    print("      passes now: remove its =XFAIL line (%s)" % dialogue.xfail)
                if status in ("FAIL", "XFAIL"):
                    for entry in result.report():
                        for line in entry.split("\n"):
                            print("      " + line)
                if status in ("FAIL", "XPASS"):
                    group_failed = True
            code = server.stop()
            if code != 0:
                print("FAIL  the server (%s) exited with %s on SIGTERM" % (config_name, code))
                counts["FAIL"] += 1
                group_failed = True
            if group_failed:
                tail = server.log().splitlines()[-30:]
                print("      last lines of the server log (%s):" % config_name)
                for line in tail:
                    print("      | " + line)
        finally:
            if server.alive():
                server.process.kill()
                server.process.wait()
            if args.keep:
                print("kept %s" % server.tmp)
            else:
                server.cleanup()

    print("golden %s (%s): %d passed, %d failed, %d expected failures, %d unexpected passes "
          "in %.1f s" % (protocol, args.backend, counts["ok"], counts["FAIL"], counts["XFAIL"],
                         counts["XPASS"], time.monotonic() - started))
    return 0 if counts["FAIL"] == 0 and counts["XPASS"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
