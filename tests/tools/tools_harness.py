"""Shared setup for the load generators' integration tests.

Started by meson as
    python3 tests/tools/test_<name>.py --binary build/src/mailwing \
        --blaster build/tools/mailwing-blaster --drainer build/tools/mailwing-drainer \
        --backend io_uring
Servers come from bench/compare/peers.py (private mailwing, Dovecot, Postfix instances
in temporary directories); mailwing's stored logs are read with the integration
harness's independent parser (tests/integration/harness.py).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench", "compare"))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import harness  # noqa: E402  (tests/integration/harness.py: read_log)
import peers  # noqa: E402  (bench/compare/peers.py)

MAILWING = None
BLASTER = None
DRAINER = None
BACKEND = "auto"

USERS = {"user%d@%s" % (i, peers.DOMAIN): "secret%d" % i for i in range(4)}


def have(program):
    return shutil.which(program) is not None


def is_root():
    return os.geteuid() == 0


class ToolRun:
    """One run of a tool: exit code, stdout, stderr and the parsed --json report."""

    def __init__(self, code, stdout, stderr, report):
        self.code = code
        self.stdout = stdout
        self.stderr = stderr
        self.report = report

    def __repr__(self):
        return "exit %s\nstdout:\n%s\nstderr:\n%s" % (self.code, self.stdout, self.stderr)


def run_tool(binary, args, timeout_s=120, json_report=True):
    with tempfile.TemporaryDirectory(prefix="mw-tool-") as tmp:
        path = os.path.join(tmp, "report.json")
        command = [binary, "--io-backend", BACKEND] + list(args)
        if json_report:
            command += ["--json", path]
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout_s)
        report = None
        if json_report and os.path.exists(path):
            with open(path) as handle:
                report = json.load(handle)
        return ToolRun(done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace"),
                       report)


def blast(target_port, *args, **kwargs):
    return run_tool(BLASTER, ["127.0.0.1:%d" % target_port] + list(args), **kwargs)


def drain(target_port, *args, **kwargs):
    return run_tool(DRAINER, ["127.0.0.1:%d" % target_port] + list(args), **kwargs)


def start_mailwing(test, users=None, durability="fsync", **kwargs):
    server = peers.Mailwing(MAILWING, users if users is not None else USERS, durability=durability,
                            shards=2, backend=BACKEND, **kwargs)
    test.addCleanup(server.stop)
    return server


def stored_messages(server, address):
    """Message payloads in a stopped mailwing's log for `address`, oldest first."""
    path = os.path.join(server.data_dir, "mailboxes", address + ".log")
    if not os.path.exists(path):
        return []
    records, _, _ = harness.read_log(path)
    return [record.payload for record in records if record.kind == 1]


def users_file(test, users):
    handle = tempfile.NamedTemporaryFile("w", prefix="mw-users-", suffix=".txt", delete=False)
    for user, password in users.items():
        handle.write("%s:%s\n" % (user, password))
    handle.close()
    test.addCleanup(os.unlink, handle.name)
    return handle.name


def main():
    global MAILWING, BLASTER, DRAINER, BACKEND
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--blaster", required=True)
    parser.add_argument("--drainer", required=True)
    parser.add_argument("--backend", default="auto")
    args, rest = parser.parse_known_args()
    MAILWING = os.path.abspath(args.binary)
    BLASTER = os.path.abspath(args.blaster)
    DRAINER = os.path.abspath(args.drainer)
    BACKEND = args.backend
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
