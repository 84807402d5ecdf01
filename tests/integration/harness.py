"""Runs the real mailwing binary for integration tests and reads what it stored.

Each test file is a unittest module started by meson as
    python3 tests/integration/<file>.py --binary build/src/mailwing --backend io_uring
and calls harness.main(). A test starts servers with Server(...): each gets a fresh
temporary data_dir and free ports (port 0; the ports are read from the server's log),
so tests can run in parallel.

Mailbox logs are parsed here independently of the C++ code, from the format written
down in include/mailwing/store/record.hh.
"""

import argparse
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
    crc ^= 0xFFFFFFFF
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


RECORD_MAGIC = 0x314C574D
RECORD_HEADER = struct.Struct("<IBBHQQQII")  # 40 bytes, record.hh
assert RECORD_HEADER.size == 40


class Record:
    def __init__(self, offset, kind, flags, uid, arrival_ms, payload):
        self.offset = offset
        self.kind = kind  # 1 message, 2 tombstone
        self.flags = flags
        self.uid = uid
        self.arrival_ms = arrival_ms
        self.payload = payload

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


def read_log(path, verify_payload_crc=True):
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
        if verify_payload_crc and crc32c(payload) != payload_crc:
            break
        records.append(Record(offset, kind, flags, uid, arrival, payload))
        offset += 40 + size
    return records, offset, len(data)


class Server:
    """A mailwing process on free ports with its own data_dir."""

    def __init__(self, test=None, users=None, durability="fsync", shards=2, extra=None,
                 data_dir=None, backend=None):
        self.tmp = tempfile.mkdtemp(prefix="mailwing-test-")
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
        if test is not None:
            test.addCleanup(self.cleanup)
        self.start()

    def start(self, timeout_s=20):
        self._log = open(self.log_path, "ab")
        start_offset = self._log.tell()
        self.process = subprocess.Popen([BINARY, "serve", "--config", self.config_path],
                                        stdout=self._log, stderr=self._log)
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            text = self.log()[start_offset:]
            if " ready" in text:
                smtp = re.findall(r"smtp listening on [\d.]+:(\d+)", text)
                pop3 = re.findall(r"pop3 listening on [\d.]+:(\d+)", text)
                self.smtp_port = int(smtp[-1]) if smtp else None
                self.pop3_port = int(pop3[-1]) if pop3 else None
                return
            if self.process.poll() is not None:
                raise RuntimeError("mailwing exited with %s:\n%s" % (self.process.returncode, text))
            time.sleep(0.02)
        raise RuntimeError("mailwing did not get ready:\n" + self.log()[start_offset:])

    def log(self):
        with open(self.log_path, "r", errors="replace") as handle:
            return handle.read()

    def stop(self, timeout_s=30):
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
        self.stop()
        self.start()

    def cleanup(self):
        if self.process is not None:
            self.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def log_path_for(self, address):
        return os.path.join(self.data_dir, "mailboxes", address + ".log")

    def messages(self, address, verify_payload_crc=True):
        """Message records (kind 1) in the mailbox's log, oldest first."""
        path = self.log_path_for(address)
        if not os.path.exists(path):
            return []
        records, _, _ = read_log(path, verify_payload_crc)
        return [r for r in records if r.kind == 1]

    def connect_smtp(self, timeout_s=10):
        sock = socket.create_connection(("127.0.0.1", self.smtp_port), timeout=timeout_s)
        return sock


def main():
    global BINARY, BACKEND
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--backend", default="auto")
    args, rest = parser.parse_known_args()
    BINARY = os.path.abspath(args.binary)
    BACKEND = args.backend
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
