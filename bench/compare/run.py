#!/usr/bin/env python3
"""The side-by-side comparison: mailwing against its peers, in one run on this machine.

    bench/compare/run.sh [--quick] [--only ingest,wide,mailboxes,large,idle,pop3,login]

Measures, with the same clients and the same load for every server:

  ingest     durable ingest of 1 KB messages over 20 sessions: mailwing (durability
             fsync) vs Postfix smtpd (private instance, durable queue, delivery to
             Maildirs) vs Postfix smtp-sink (stores nothing), each driven by
             `smtp-source -d` and by mailwing-blaster
  wide       the same with mailwing-blaster over 200 sessions: mailwing vs smtp-sink
  mailboxes  1 KB messages spread over 10,000 mailboxes vs all to one mailbox
  large      a 100 MB message: MB/s against the disk's synced sequential write rate, and
             the server's peak RSS
  idle       10,000 idle SMTP connections: the server's RSS
  pop3       POP3 drain of 20,000 x 1 KB messages with mailwing-drainer: mailwing vs
             Dovecot (private instance, Maildir)
  login      POP3 login time on a 100,000-message mailbox: mailwing vs Dovecot

and prints a ratio table against the targets of DESIGN.md section 6. Results go to
bench/compare/results/<date>.json and an SVG chart beside it. Postfix and Dovecot are
installed from Debian's packages when missing and always run as private instances in
temporary directories on loopback; nothing under /etc is changed. Parts that need
mailwing's POP3 service are skipped, with a note, while its log has no
"pop3 listening on" line.
"""

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)

import chart  # noqa: E402
import peers  # noqa: E402

DOMAIN = peers.DOMAIN
SESSIONS = 20
# The blaster's throughput target is about how much a pipelined client can push through,
# not about 20 lockstep sessions: with 20 the rate is bound by each session's round trip
# plus the group commit, so the "wide" section offers ten times the concurrency.
WIDE_SESSIONS = 200


def log(text):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), text), file=sys.stderr, flush=True)


class Skip(Exception):
    pass


class Bench:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.mailwing = args.mailwing
        self.blaster_path = args.blaster
        self.drainer_path = args.drainer
        self.tmp = tempfile.mkdtemp(prefix="mw-compare-")
        self.results = {}
        self.notes = []

    # --- clients ------------------------------------------------------------------------

    def blaster(self, port, *args, timeout_s=900):
        path = os.path.join(self.tmp, "blaster.json")
        if os.path.exists(path):
            os.unlink(path)
        command = [self.blaster_path, "127.0.0.1:%d" % port, "--json", path, "--no-progress"] + [str(a) for a in args]
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout_s)
        if not os.path.exists(path):
            raise RuntimeError("mailwing-blaster failed (%d): %s" % (done.returncode, done.stderr.decode()[-500:]))
        with open(path) as handle:
            report = json.load(handle)
        report["exit"] = done.returncode
        return report

    def drainer(self, port, *args, timeout_s=900):
        path = os.path.join(self.tmp, "drainer.json")
        if os.path.exists(path):
            os.unlink(path)
        command = [self.drainer_path, "127.0.0.1:%d" % port, "--json", path, "--no-progress"] + [str(a) for a in args]
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout_s)
        if not os.path.exists(path):
            raise RuntimeError("mailwing-drainer failed (%d): %s" % (done.returncode, done.stderr.decode()[-500:]))
        with open(path) as handle:
            report = json.load(handle)
        report["exit"] = done.returncode
        return report

    def smtp_source(self, port, messages, size=1024, to="user0@" + DOMAIN):
        """smtp-source -d -s 20 -m N -l SIZE: Postfix's own load generator, timed here."""
        command = ["smtp-source", "-d", "-s", str(SESSIONS), "-m", str(messages), "-l", str(size),
                   "-f", "blaster@" + DOMAIN, "-t", to, "127.0.0.1:%d" % port]
        started = time.monotonic()
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=1800)
        elapsed = time.monotonic() - started
        return {"command": " ".join(command[:-1]) + " HOST:PORT", "exit": done.returncode, "elapsed_s": elapsed,
                "messages": messages, "msgs_per_s": messages / elapsed if done.returncode == 0 else None,
                "output": done.stdout.decode(errors="replace")[-500:]}

    def blast_row(self, report):
        accepted = report["messages"]["accepted"]
        return {"client": "mailwing-blaster", "messages": accepted, "failed": report["messages"]["failed"],
                "msgs_per_s": report["throughput"]["msgs_per_s"], "mb_per_s": report["throughput"]["mb_per_s"],
                "p50_ms": report["latency_us"]["p50"] / 1e3, "p99_ms": report["latency_us"]["p99"] / 1e3,
                "p999_ms": report["latency_us"]["p99.9"] / 1e3, "max_ms": report["latency_us"]["max"] / 1e3,
                "errors": report["errors"]["total"], "report": report}

    # --- servers -------------------------------------------------------------------------

    def start_mailwing(self, users=1, durability="fsync"):
        accounts = {"user%d@%s" % (i, DOMAIN): "secret%d" % i for i in range(users)}
        server = peers.Mailwing(self.mailwing, accounts, durability=durability)
        return server

    def pop3_or_skip(self, server):
        if server.pop3_port is None or "pop3 listening on" not in server.log_text():
            raise Skip("mailwing's POP3 service is not running yet (no 'pop3 listening on' in its log)")

    # --- sections ------------------------------------------------------------------------

    def ingest(self):
        counts = {"mailwing": 20000 if self.quick else 100000, "smtpd": 3000 if self.quick else 10000,
                  "sink": 20000 if self.quick else 100000}
        rows = []
        for server_name in ("mailwing", "smtpd", "sink"):
            for client in ("smtp-source", "mailwing-blaster"):
                messages = counts[server_name]
                log("ingest: %s driven by %s, %d x 1 KB over %d sessions" % (server_name, client, messages, SESSIONS))
                server = self._start_server(server_name)
                try:
                    if client == "smtp-source":
                        result = self.smtp_source(server.port_smtp, messages)
                        row = {"client": "smtp-source -d", "messages": messages, "msgs_per_s": result["msgs_per_s"],
                               "errors": 0 if result["exit"] == 0 else 1, "report": result}
                    else:
                        row = self.blast_row(self.blaster(server.port_smtp, "--connections", SESSIONS, "--messages",
                                                          messages, "--size", "1k", "--to", "user0@" + DOMAIN,
                                                          "--bdat", "off"))
                    row["server"] = server_name
                    if server_name == "smtpd":
                        row["queue_left"] = server.queue_size()
                    rows.append(row)
                finally:
                    server.stop()
        self.results["ingest"] = rows

    def _start_server(self, name, mailboxes=16):
        if name == "mailwing":
            server = self.start_mailwing(users=max(mailboxes, 1))
            server.port_smtp = server.smtp_port
        elif name == "smtpd":
            server = peers.PostfixSmtpd(mailboxes=mailboxes)
            server.port_smtp = server.port
        else:
            server = peers.SmtpSink()
            server.port_smtp = server.port
        return server

    def wide(self):
        messages = 20000 if self.quick else 200000
        rows = []
        for server_name in ("mailwing", "sink"):
            log("wide: %s driven by mailwing-blaster, %d x 1 KB over %d sessions" % (server_name, messages,
                                                                                     WIDE_SESSIONS))
            server = self._start_server(server_name)
            try:
                row = self.blast_row(self.blaster(server.port_smtp, "--connections", WIDE_SESSIONS, "--messages",
                                                  messages, "--size", "1k", "--to", "user0@" + DOMAIN,
                                                  "--bdat", "off"))
                row["server"] = server_name
                rows.append(row)
            finally:
                server.stop()
        self.results["wide"] = rows

    def mailboxes(self):
        rows = []
        plan = [("mailwing", 20000 if self.quick else 100000), ("smtpd", 2000 if self.quick else 10000)]
        for server_name, messages in plan:
            for mailbox_count in (1, 10000):
                log("mailboxes: %s, %d x 1 KB to %d mailbox%s" % (server_name, messages, mailbox_count,
                                                                   "" if mailbox_count == 1 else "es"))
                server = self._start_server(server_name, mailboxes=10000)
                try:
                    row = self.blast_row(self.blaster(server.port_smtp, "--connections", SESSIONS, "--messages",
                                                      messages, "--size", "1k", "--mailboxes", mailbox_count,
                                                      "--bdat", "off"))
                finally:
                    server.stop()
                row["server"] = server_name
                row["mailboxes"] = mailbox_count
                rows.append(row)
        self.results["mailboxes"] = rows

    def large(self):
        size_mb = 10 if self.quick else 100
        count = 3
        disk = disk_sync_write_mb_per_s(self.tmp, size_mb, count)
        log("large: disk's synced sequential write rate %.0f MB/s" % disk)
        rows = []
        for server_name in ("mailwing", "smtpd", "sink"):
            log("large: %d x %d MB to %s" % (count, size_mb, server_name))
            server = self._start_server(server_name)
            pid = server.pid if server_name != "smtpd" else server.master_pid()
            sampler = RssSampler(pid)
            try:
                baseline = peers.tree_rss_kb(pid)
                sampler.start()
                report = self.blaster(server.port_smtp, "--connections", 1, "--messages", count, "--size",
                                      "%dm" % size_mb, "--pool", 1, "--to", "user0@" + DOMAIN, "--timeout", "600s",
                                      "--bdat", "off")
                sampler.stop()
                row = self.blast_row(report)
                row["server"] = server_name
                row["size_mb"] = size_mb
                row["baseline_rss_mb"] = baseline / 1024
                row["peak_rss_mb"] = sampler.peak_kb / 1024
                if server_name == "mailwing":
                    row["vm_hwm_mb"] = peers.process_rss_kb(pid, peak=True) / 1024
                row["disk_mb_per_s"] = disk
                rows.append(row)
            finally:
                sampler.stop()
                server.stop()
        self.results["large"] = {"disk_sync_write_mb_per_s": disk, "rows": rows}

    def idle(self):
        count = 1000 if self.quick else 10000
        rows = []
        for server_name in ("mailwing", "sink"):
            log("idle: %d connections to %s" % (count, server_name))
            if server_name == "sink":
                server = peers.SmtpSink(max_connections=count + 100)
                server.port_smtp = server.port
            else:
                server = self._start_server(server_name)
            try:
                pid = server.pid
                before = peers.tree_rss_kb(pid)
                sockets = open_idle_connections(server.port_smtp, count)
                time.sleep(1.0)
                during = peers.tree_rss_kb(pid)
                alive = count_alive(sockets)
                for sock in sockets:
                    sock.close()
                rows.append({"server": server_name, "connections": count, "alive": alive,
                             "rss_before_mb": before / 1024, "rss_mb": during / 1024,
                             "per_connection_kb": (during - before) / count})
            finally:
                server.stop()
        self.results["idle"] = rows

    def pop3(self):
        messages = 2000 if self.quick else 20000
        rows = []
        # Dovecot: a Maildir written directly, then a warm-up login (Dovecot indexes a new
        # Maildir at the first login), then the drain.
        log("pop3: Dovecot, %d x 1 KB" % messages)
        dovecot = peers.Dovecot({"user0@" + DOMAIN: "secret0"})
        try:
            dovecot.fill("user0@" + DOMAIN, messages, size=1024)
            warm = self.drainer(dovecot.port, "--user", "user0@" + DOMAIN, "--password", "secret0",
                                "--max-messages", 0)
            rows.append(self._drain_row("dovecot", self._median_drain(dovecot.port), warm))
        finally:
            dovecot.stop()
        log("pop3: mailwing, %d x 1 KB" % messages)
        server = self.start_mailwing(users=1)
        try:
            self.pop3_or_skip(server)
            fill = self.blaster(server.smtp_port, "--connections", SESSIONS, "--messages", messages, "--size", "1k",
                                "--to", "user0@" + DOMAIN)
            if fill["messages"]["accepted"] != messages:
                raise RuntimeError("filling mailwing: %s" % fill["messages"])
            warm = self.drainer(server.pop3_port, "--user", "user0@" + DOMAIN, "--password", "secret0",
                                "--max-messages", 0)
            rows.append(self._drain_row("mailwing", self._median_drain(server.pop3_port), warm))
        except Skip as skipped:
            self.notes.append("pop3 (mailwing): skipped: %s" % skipped)
            log("pop3: mailwing skipped: %s" % skipped)
        finally:
            server.stop()
        self.results["pop3"] = rows

    def _median_drain(self, port):
        """Three drains (no DELE, so each sees the whole mailbox); the median by rate. One
        drain of 20,000 small messages lasts a fraction of a second, short enough for a
        neighbour on the shared machine to move it by a third."""
        reports = [self.drainer(port, "--user", "user0@" + DOMAIN, "--password", "secret0") for _ in range(3)]
        reports.sort(key=lambda report: report["throughput"]["msgs_per_s"])
        return reports[1]

    def _drain_row(self, server_name, report, warm):
        return {"server": server_name, "messages": report["messages"]["retrieved"],
                "verified": report["messages"]["verified"],
                "integrity_failures": report["messages"]["integrity_failures"],
                "msgs_per_s": report["throughput"]["msgs_per_s"], "mb_per_s": report["throughput"]["mb_per_s"],
                "retr_p50_ms": report["latency_us"]["p50"] / 1e3, "retr_p99_ms": report["latency_us"]["p99"] / 1e3,
                "login_ms": report["login_us"]["max"] / 1e3, "first_login_ms": warm["login_us"]["max"] / 1e3,
                "errors": report["errors"]["total"], "report": report}

    def login(self):
        messages = 10000 if self.quick else 100000
        rows = []
        log("login: Dovecot, a %d-message mailbox" % messages)
        dovecot = peers.Dovecot({"user0@" + DOMAIN: "secret0"})
        try:
            dovecot.fill("user0@" + DOMAIN, messages, size=1024)
            rows.append(self._login_row("dovecot", dovecot.port, messages))
        finally:
            dovecot.stop()
        log("login: mailwing, a %d-message mailbox" % messages)
        server = self.start_mailwing(users=1)
        try:
            self.pop3_or_skip(server)
            fill = self.blaster(server.smtp_port, "--connections", SESSIONS, "--messages", messages, "--size", "1k",
                                "--to", "user0@" + DOMAIN)
            if fill["messages"]["accepted"] != messages:
                raise RuntimeError("filling mailwing: %s" % fill["messages"])
            rows.append(self._login_row("mailwing", server.pop3_port, messages))
        except Skip as skipped:
            self.notes.append("login (mailwing): skipped: %s" % skipped)
            log("login: mailwing skipped: %s" % skipped)
        finally:
            server.stop()
        self.results["login"] = rows

    def _login_row(self, server_name, port, messages):
        logins = []
        stat = None
        for _ in range(6):
            report = self.drainer(port, "--user", "user0@" + DOMAIN, "--password", "secret0", "--max-messages", 0)
            if report["login_us"]["count"] != 1:
                raise RuntimeError("%s login failed: %s" % (server_name, report["errors"]))
            logins.append(report["login_us"]["max"] / 1e3)
            stat = report["mailboxes"]["stat_messages"]
        return {"server": server_name, "messages": stat, "expected_messages": messages, "first_login_ms": logins[0],
                "login_ms": statistics.median(logins[1:]), "logins_ms": logins}


# --- measurement helpers ------------------------------------------------------------------


def disk_sync_write_mb_per_s(directory, size_mb, count):
    """The disk's durable write rate in the large-message test's own shape: `count` units
    of size_mb, each written in 1 MiB pieces and then fdatasync'ed. The median of three
    probes, since one probe on a shared virtual disk can be far off."""
    path = os.path.join(directory, "disk-probe")
    block = os.urandom(1 << 20)
    rates = []
    for _ in range(3):
        started = time.monotonic()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for _ in range(count):
                for _ in range(size_mb):
                    os.write(fd, block)
                os.fdatasync(fd)
        finally:
            os.close(fd)
        elapsed = time.monotonic() - started
        os.unlink(path)
        rates.append(count * size_mb * (1 << 20) / elapsed / 1e6)
    return statistics.median(rates)


class RssSampler:
    """Samples the resident memory of a process tree every 20 ms; keeps the peak."""

    def __init__(self, pid):
        self.pid = pid
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak_kb = max(self.peak_kb, peers.tree_rss_kb(self.pid))
            except (OSError, ValueError):
                pass
            self._stop.wait(0.02)

    def stop(self):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def open_idle_connections(port, count):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count + 256:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 1024), hard))
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sockets.append(sock)
    # Every connection got its greeting: the server holds them all as sessions.
    for sock in sockets:
        sock.recv(512)
    return sockets


def count_alive(sockets):
    alive = 0
    for sock in sockets:
        sock.setblocking(False)
        try:
            data = sock.recv(1)
            if data:
                alive += 1
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    return alive


# --- report -------------------------------------------------------------------------------


def ratio(a, b):
    if not a or not b:
        return None
    return a / b


def fmt_rate(value):
    return "n/a" if value is None else "{:,.0f}".format(value)


def fmt_ms(value):
    return "-" if value is None else "%.2f" % value


def fmt_ratio(value):
    return "-" if value is None else "%.2fx" % value


def verdict(value, goal, higher_is_better=True):
    if value is None:
        return "n/a"
    ok = value >= goal if higher_is_better else value <= goal
    return "MET" if ok else "missed"


def table(bench):
    r = bench.results
    lines = []
    add = lines.append
    names = {"mailwing": "mailwing (fsync)", "smtpd": "Postfix smtpd", "sink": "Postfix smtp-sink",
             "dovecot": "Dovecot"}
    targets = []

    if "ingest" in r:
        add("Durable ingest, 1 KB messages, %d sessions (msgs/s accepted)" % SESSIONS)
        add("  %-20s %-18s %10s %8s %8s %10s %10s" % ("server", "client", "msgs/s", "p50 ms", "p99 ms",
                                                      "vs smtpd", "vs sink"))
        by = {(row["server"], row["client"]): row for row in r["ingest"]}
        for row in r["ingest"]:
            smtpd = by.get(("smtpd", row["client"]), {}).get("msgs_per_s")
            sink = by.get(("sink", row["client"]), {}).get("msgs_per_s")
            add("  %-20s %-18s %10s %8s %8s %10s %10s" % (
                names[row["server"]], row["client"], fmt_rate(row["msgs_per_s"]), fmt_ms(row.get("p50_ms")),
                fmt_ms(row.get("p99_ms")), fmt_ratio(ratio(row["msgs_per_s"], smtpd)),
                fmt_ratio(ratio(row["msgs_per_s"], sink))))
        mw_source = by.get(("mailwing", "smtp-source -d"), {}).get("msgs_per_s")
        mw_blaster = by.get(("mailwing", "mailwing-blaster"), {})
        targets.append(("durable ingest, smtp-source: mailwing / smtp-sink", ratio(mw_source, by.get(
            ("sink", "smtp-source -d"), {}).get("msgs_per_s")), 1.0, "x"))
        targets.append(("durable ingest, smtp-source: mailwing / Postfix smtpd", ratio(mw_source, by.get(
            ("smtpd", "smtp-source -d"), {}).get("msgs_per_s")), 20.0, "x"))
        if "wide" not in r:
            targets.append(("durable ingest, blaster, 1 KB: mailwing msgs/s", mw_blaster.get("msgs_per_s"), 100000,
                            ""))
        sink_source = by.get(("sink", "smtp-source -d"), {}).get("msgs_per_s")
        sink_blaster = by.get(("sink", "mailwing-blaster"), {}).get("msgs_per_s")
        add("  blaster vs smtp-source against smtp-sink: %s" % fmt_ratio(ratio(sink_blaster, sink_source)))
        add("  (mailwing-blaster: 1 shard, PIPELINING, DATA for every server; latency from MAIL to the 250 after")
        add("   the end of data. smtp-source reports no latency; its rate is messages / wall time.)")
        add("")

    if "wide" in r:
        add("Durable ingest, 1 KB messages, %d sessions (mailwing-blaster)" % WIDE_SESSIONS)
        add("  %-20s %10s %8s %8s %8s %10s" % ("server", "msgs/s", "p50 ms", "p99 ms", "p99.9 ms", "vs sink"))
        by = {row["server"]: row for row in r["wide"]}
        for row in r["wide"]:
            add("  %-20s %10s %8s %8s %8s %10s" % (
                names[row["server"]], fmt_rate(row["msgs_per_s"]), fmt_ms(row["p50_ms"]), fmt_ms(row["p99_ms"]),
                fmt_ms(row["p999_ms"]), fmt_ratio(ratio(row["msgs_per_s"], by.get("sink", {}).get("msgs_per_s")))))
        targets.append(("durable ingest, blaster, 1 KB, %d sessions: mailwing msgs/s" % WIDE_SESSIONS,
                        by.get("mailwing", {}).get("msgs_per_s"), 100000, ""))
        add("")

    if "mailboxes" in r:
        add("1 KB messages to 10,000 mailboxes vs one mailbox (mailwing-blaster, %d sessions)" % SESSIONS)
        add("  %-20s %10s %10s %8s %8s %8s" % ("server", "mailboxes", "msgs/s", "p50 ms", "p99 ms", "ratio"))
        by = {(row["server"], row["mailboxes"]): row for row in r["mailboxes"]}
        for row in r["mailboxes"]:
            one = by.get((row["server"], 1), {}).get("msgs_per_s")
            add("  %-20s %10s %10s %8s %8s %8s" % (names[row["server"]], "{:,}".format(row["mailboxes"]),
                                                  fmt_rate(row["msgs_per_s"]), fmt_ms(row["p50_ms"]),
                                                  fmt_ms(row["p99_ms"]), fmt_ratio(ratio(row["msgs_per_s"], one))))
        targets.append(("10,000 mailboxes / one mailbox (mailwing)", ratio(
            by.get(("mailwing", 10000), {}).get("msgs_per_s"), by.get(("mailwing", 1), {}).get("msgs_per_s")),
            0.8, "x"))
        add("")

    if "large" in r:
        large = r["large"]
        add("Large messages (%d MB each, 1 session); disk's synced sequential write: %.0f MB/s" % (
            large["rows"][0]["size_mb"] if large["rows"] else 0, large["disk_sync_write_mb_per_s"]))
        add("  %-20s %10s %10s %14s %14s" % ("server", "MB/s", "vs disk", "peak RSS MB", "RSS before MB"))
        for row in large["rows"]:
            add("  %-20s %10.1f %10s %14.1f %14.1f" % (names[row["server"]], row["mb_per_s"],
                                                       fmt_ratio(ratio(row["mb_per_s"], row["disk_mb_per_s"])),
                                                       row["peak_rss_mb"], row["baseline_rss_mb"]))
        mw = [row for row in large["rows"] if row["server"] == "mailwing"]
        if mw:
            targets.append(("large messages: mailwing MB/s / disk synced write", ratio(
                mw[0]["mb_per_s"], large["disk_sync_write_mb_per_s"]), 0.8, "x"))
        add("  (peak RSS: sampled every 20 ms, the whole process tree; Postfix: master and all children)")
        add("")

    if "idle" in r:
        add("Idle connections")
        add("  %-20s %12s %8s %14s %14s %10s" % ("server", "connections", "alive", "RSS before MB", "RSS MB",
                                                 "KB/conn"))
        for row in r["idle"]:
            add("  %-20s %12s %8s %14.1f %14.1f %10.1f" % (names[row["server"]], "{:,}".format(row["connections"]),
                                                            "{:,}".format(row["alive"]), row["rss_before_mb"],
                                                            row["rss_mb"], row["per_connection_kb"]))
        mw = [row for row in r["idle"] if row["server"] == "mailwing"]
        if mw and mw[0]["connections"] >= 10000:
            targets.append(("10,000 idle connections: mailwing RSS MB", mw[0]["rss_mb"], 64, "MB"))
        add("")

    if "pop3" in r:
        add("POP3 drain (mailwing-drainer, 1 session, 32 RETRs in flight)")
        add("  %-20s %10s %10s %8s %10s %12s %10s" % ("server", "messages", "msgs/s", "MB/s", "RETR p99",
                                                      "verified", "ratio"))
        by = {row["server"]: row for row in r["pop3"]}
        for row in r["pop3"]:
            add("  %-20s %10s %10s %8.1f %10s %12s %10s" % (
                names[row["server"]], "{:,}".format(row["messages"]), fmt_rate(row["msgs_per_s"]), row["mb_per_s"],
                fmt_ms(row["retr_p99_ms"]), "{:,}".format(row["verified"]),
                fmt_ratio(ratio(row["msgs_per_s"], by.get("dovecot", {}).get("msgs_per_s")))))
        targets.append(("POP3 drain: mailwing / Dovecot", ratio(by.get("mailwing", {}).get("msgs_per_s"),
                                                                by.get("dovecot", {}).get("msgs_per_s")), 5.0, "x"))
        add("")

    if "login" in r:
        add("POP3 login on a large mailbox (USER/PASS to +OK)")
        add("  %-20s %10s %16s %16s" % ("server", "messages", "first login ms", "warm login ms"))
        for row in r["login"]:
            add("  %-20s %10s %16.2f %16.2f" % (names[row["server"]], "{:,}".format(row["messages"]),
                                               row["first_login_ms"], row["login_ms"]))
        mw = [row for row in r["login"] if row["server"] == "mailwing"]
        targets.append(("login, 100,000-message mailbox: mailwing ms", mw[0]["login_ms"] if mw else None, 5.0,
                        "ms"))
        add("")

    if targets:
        add("Targets (DESIGN.md section 6)")
        for name, value, goal, unit in targets:
            lower = unit in ("MB", "ms")
            shown = "n/a" if value is None else ("%.2f%s" % (value, unit) if unit in ("x", "ms", "MB")
                                                 else "{:,.0f}".format(value))
            add("  %-58s %14s  goal %s%s  %s" % (name, shown, "<= " if lower else ">= ",
                                                 ("%g%s" % (goal, unit)) if unit else "{:,}".format(goal),
                                                 verdict(value, goal, not lower)))
    for note in bench.notes:
        add("note: " + note)
    return "\n".join(lines)


def svg(bench, title, subtitle):
    r = bench.results
    panels = []
    names = {"mailwing": "mailwing", "smtpd": "Postfix smtpd", "sink": "Postfix smtp-sink", "dovecot": "Dovecot"}
    if "ingest" in r:
        panels.append(("Durable ingest, 1 KB, %d sessions" % SESSIONS, "msgs/s",
                       [("%s / %s" % (names[row["server"]], row["client"]), row["msgs_per_s"], row["server"])
                        for row in r["ingest"]]))
        latency = []
        for row in r["ingest"]:
            if row.get("p50_ms") is not None:
                latency.append(("%s p50" % names[row["server"]], row["p50_ms"], "p50"))
                latency.append(("%s p99" % names[row["server"]], row["p99_ms"], "p99"))
        panels.append(("Latency, mailwing-blaster (MAIL to 250 after end of data)", "ms", latency))
    if "wide" in r:
        panels.append(("Durable ingest, 1 KB, %d sessions (mailwing-blaster)" % WIDE_SESSIONS, "msgs/s",
                       [(names[row["server"]], row["msgs_per_s"], row["server"]) for row in r["wide"]]))
    if "mailboxes" in r:
        panels.append(("1 KB to one mailbox vs 10,000 mailboxes", "msgs/s",
                       [("%s, %s mailbox%s" % (names[row["server"]], "{:,}".format(row["mailboxes"]),
                                               "" if row["mailboxes"] == 1 else "es"), row["msgs_per_s"], row["server"])
                        for row in r["mailboxes"]]))
    if "large" in r:
        panels.append(("Large messages", "MB/s",
                       [("disk, synced sequential write", r["large"]["disk_sync_write_mb_per_s"], "sink")] +
                       [(names[row["server"]], row["mb_per_s"], row["server"]) for row in r["large"]["rows"]]))
    if "idle" in r:
        panels.append(("Idle connections: server RSS", "MB",
                       [("%s, %s idle" % (names[row["server"]], "{:,}".format(row["connections"])), row["rss_mb"],
                         row["server"]) for row in r["idle"]]))
    if "pop3" in r:
        panels.append(("POP3 drain, 1 KB messages", "msgs/s",
                       [(names[row["server"]], row["msgs_per_s"], row["server"]) for row in r["pop3"]]))
    if "login" in r:
        panels.append(("POP3 login, large mailbox (warm)", "ms",
                       [("%s, %s messages" % (names[row["server"]], "{:,}".format(row["messages"] or 0)),
                         row["login_ms"], row["server"]) for row in r["login"]]))
    return chart.render(title, subtitle, panels)




def environment():
    def version(command):
        try:
            return subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10,
                                  check=False).stdout.decode().strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return None

    return {"cpus": os.cpu_count(), "kernel": platform.release(), "load_average": os.getloadavg(),
            "postfix": version(["postconf", "-d", "-h", "mail_version"]), "dovecot": version(["dovecot", "--version"]),
            "git_commit": version(["git", "-C", REPO, "rev-parse", "--short", "HEAD"])}


def build(build_dir):
    if not os.path.exists(os.path.join(build_dir, "build.ninja")):
        log("configuring a release build in %s" % build_dir)
        subprocess.run(["meson", "setup", build_dir, "--buildtype=release"], cwd=REPO, check=True,
                       stdout=subprocess.DEVNULL)
    log("building mailwing and the load generators in %s" % build_dir)
    subprocess.run(["ninja", "-C", build_dir, "src/mailwing", "tools/mailwing-blaster", "tools/mailwing-drainer"],
                   check=True, stdout=subprocess.DEVNULL)


SECTIONS = ["ingest", "wide", "mailboxes", "large", "idle", "pop3", "login"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller loads (a smoke run, not a measurement)")
    parser.add_argument("--only", default=",".join(SECTIONS), help="sections to run (default: all): " +
                        ",".join(SECTIONS))
    parser.add_argument("--build-dir", default=os.path.join(REPO, "build-compare"),
                        help="release build to use (configured and built when needed)")
    parser.add_argument("--no-build", action="store_true", help="use the binaries as they are")
    parser.add_argument("--results", default=os.path.join(HERE, "results"), help="where JSON and SVG go")
    args = parser.parse_args()
    sections = [name.strip() for name in args.only.split(",") if name.strip()]
    for name in sections:
        if name not in SECTIONS:
            parser.error("unknown section %r (sections: %s)" % (name, ", ".join(SECTIONS)))
    if os.geteuid() != 0:
        parser.error("run as root: Postfix and Dovecot private instances need it")

    build_dir = os.path.abspath(args.build_dir)
    if not args.no_build:
        build(build_dir)
    args.mailwing = os.path.join(build_dir, "src", "mailwing")
    args.blaster = os.path.join(build_dir, "tools", "mailwing-blaster")
    args.drainer = os.path.join(build_dir, "tools", "mailwing-drainer")
    for path in (args.mailwing, args.blaster, args.drainer):
        if not os.access(path, os.X_OK):
            parser.error("missing %s (build it, or drop --no-build)" % path)

    installed = peers.install_peers(log=log)
    for program in ("smtp-source", "smtp-sink", "postfix", "dovecot"):
        if not shutil.which(program):
            sys.exit("run.py: %s is still missing after installing the packages" % program)

    started = datetime.datetime.now()
    bench = Bench(args)
    env = environment()
    failures = []
    try:
        for name in sections:
            try:
                getattr(bench, name)()
            except Exception as error:  # one broken section must not lose the others
                failures.append("%s: %s" % (name, error))
                bench.notes.append("%s: FAILED: %s" % (name, error))
                log("%s FAILED: %s" % (name, error))
    finally:
        shutil.rmtree(bench.tmp, ignore_errors=True)
    finished = datetime.datetime.now()

    text = table(bench)
    print(text)
    os.makedirs(args.results, exist_ok=True)
    stamp = started.strftime("%Y-%m-%dT%H-%M-%S") + ("-quick" if args.quick else "")
    json_path = os.path.join(args.results, stamp + ".json")
    svg_path = os.path.join(args.results, stamp + ".svg")
    document = {"started": started.isoformat(timespec="seconds"), "finished": finished.isoformat(timespec="seconds"),
                "quick": args.quick, "sections": sections, "environment": env, "installed_packages": installed,
                "results": bench.results, "notes": bench.notes, "table": text.splitlines()}
    with open(json_path, "w") as handle:
        json.dump(document, handle, indent=2, default=str)
    subtitle = "%s, %d CPUs, kernel %s, Postfix %s, %s%s" % (
        started.strftime("%Y-%m-%d %H:%M"), env["cpus"] or 0, env["kernel"], env["postfix"], env["dovecot"] or "",
        " (quick run)" if args.quick else "")
    with open(svg_path, "w") as handle:
        handle.write(svg(bench, "mailwing vs Postfix and Dovecot, one run on this machine", subtitle))
    print("\nresults: %s\nchart:   %s" % (os.path.relpath(json_path), os.path.relpath(svg_path)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
