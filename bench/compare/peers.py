"""Private instances of the servers mailwing is compared with, and of mailwing itself.

Used by bench/compare/run.py (the side-by-side comparison) and by tests/tools (the load
generators' tests). Every instance lives in its own temporary directory, listens on a
free loopback port, and is stopped by stop(); nothing under /etc is read or changed
except that the Debian packages are installed when missing (install_peers()).

  SmtpSink     Postfix smtp-sink: accepts everything, stores nothing
  PostfixSmtpd a complete private Postfix (master, smtpd, cleanup, qmgr, virtual) with
               its own config_directory and queue_directory; mail to the test domain is
               delivered to Maildirs (virtual(8)), so its queue is the durable one
  Dovecot      a private Dovecot POP3 server over Maildirs and a passwd-file
  Mailwing     mailwing serve with a generated config

Message files in the load generators' format (X-Mailwing-Hash) can be written straight
into a Maildir with write_maildir(), which is how Dovecot gets its test mailboxes.
"""

import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

DOMAIN = "example.test"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port, timeout_s=20, process=None, banner=True):
    """Waits until something accepts on 127.0.0.1:port (and sends a greeting)."""
    deadline = time.time() + timeout_s
    last = None
    while time.time() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError("process exited with %s" % process.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                if banner:
                    sock.settimeout(5)
                    if sock.recv(200):
                        return
                else:
                    return
        except OSError as error:
            last = error
        time.sleep(0.05)
    raise RuntimeError("nothing answers on port %d (%s)" % (port, last))


def install_peers(log=print):
    """Installs Postfix and Dovecot's POP3 server from Debian's packages when missing.

    Postfix's package asks which configuration to set up; "No configuration" leaves the
    system's mail setup alone (no /etc/postfix/main.cf is written).
    """
    missing = []
    if not shutil.which("smtp-sink") or not shutil.which("postfix"):
        missing.append("postfix")
    if not os.path.exists("/usr/lib/dovecot/pop3") or not shutil.which("dovecot"):
        missing.append("dovecot-pop3d")
    if not missing:
        return []
    log("installing %s from Debian packages" % " ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["debconf-set-selections"], input=b"postfix postfix/main_mailer_type select No configuration\n",
                   check=True)
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends"] + missing, check=True, env=env,
                   stdout=subprocess.DEVNULL)
    return missing


# ---------------------------------------------------------------------------------------
# Messages in the load generators' format


def generate_body(rng, size):
    """A body of exactly `size` bytes (1 becomes 2) with CRLF lines, some starting with '.'."""
    if size == 1:
        size = 2
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    lines = []
    remaining = size
    while remaining > 0:
        content = rng.randint(0, 76)
        if remaining - 2 <= 76:
            content = remaining - 2
        elif remaining - 2 - content < 2:
            content = remaining - 4
        text = "".join(rng.choice(alphabet) for _ in range(content))
        if content > 0 and rng.randrange(24) == 0:
            text = "." + text[1:]
        lines.append(text + "\r\n")
        remaining -= content + 2
    return "".join(lines).encode()


def make_message(body, number=0, to="user0@" + DOMAIN):
    """A message whose X-Mailwing-Hash header matches `body` (bytes)."""
    digest = hashlib.sha256(body).hexdigest()
    headers = ("From: <generator@%s>\r\nTo: <%s>\r\nSubject: generated message %d\r\n"
               "Message-ID: <generated.%d@peers.py>\r\nX-Mailwing-Hash: sha256=%s; bytes=%d\r\n\r\n"
               % (DOMAIN, to, number, number, digest, len(body)))
    return headers.encode() + body


def check_message(message):
    """'ok', 'mismatch' or 'no_header' for a message as stored (CRLF or LF lines)."""
    if b"\r\n" not in message:
        message = message.replace(b"\n", b"\r\n")
    if message.startswith(b"\r\n"):
        head, body = b"", message[2:]
    else:
        end = message.find(b"\r\n\r\n")
        head, body = (message, b"") if end < 0 else (message[:end + 2], message[end + 4:])
    found = re.search(rb"(?im)^X-Mailwing-Hash:\s*sha256=([0-9a-f]{64})(?:;\s*bytes=(\d+))?", head)
    if not found:
        return "no_header"
    if hashlib.sha256(body).hexdigest() != found.group(1).decode():
        return "mismatch"
    if found.group(2) is not None and int(found.group(2)) != len(body):
        return "mismatch"
    return "ok"


def write_maildir(maildir, count, size=1024, seed=1, uid=None, gid=None, distinct=64):
    """Writes `count` messages into maildir/new (LF line ends, as Maildir keeps them).

    Bodies repeat every `distinct` messages so that 100,000 messages take seconds.
    Returns the list of file names.
    """
    for sub in ("new", "cur", "tmp"):
        os.makedirs(os.path.join(maildir, sub), exist_ok=True)
    rng = random.Random(seed)
    bodies = [generate_body(rng, size) for _ in range(min(distinct, max(count, 1)))]
    names = []
    stamp = int(time.time())
    for number in range(count):
        message = make_message(bodies[number % len(bodies)], number).replace(b"\r\n", b"\n")
        name = "%d.M%dP%d.peers,S=%d" % (stamp, number, os.getpid(), len(message))
        with open(os.path.join(maildir, "new", name), "wb") as handle:
            handle.write(message)
        names.append(name)
    if uid is not None:
        chown_tree(os.path.dirname(maildir.rstrip("/")), uid, gid)
    return names


def chown_tree(path, uid, gid):
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), uid, gid)


def process_rss_kb(pid, peak=False):
    """VmRSS (or VmHWM with peak=True) of a process, in KiB."""
    key = "VmHWM:" if peak else "VmRSS:"
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith(key):
                return int(line.split()[1])
    return 0


def tree_rss_kb(pid):
    """Resident memory of a process and all its descendants, in KiB."""
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            total += process_rss_kb(current)
            with open("/proc/%d/task/%d/children" % (current, current)) as children:
                pending.extend(int(child) for child in children.read().split())
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


# ---------------------------------------------------------------------------------------
# Servers


class _Instance:
    def __init__(self, prefix):
        self.tmp = tempfile.mkdtemp(prefix=prefix)
        self.process = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


class SmtpSink(_Instance):
    """Postfix smtp-sink: replies to everything, stores nothing."""

    def __init__(self, port=None, backlog=1024, max_connections=None):
        super().__init__("mw-smtp-sink-")
        self.port = port or free_port()
        args = ["smtp-sink", "-u", "nobody"]
        if max_connections:
            args += ["-m", str(max_connections)]
        args += ["127.0.0.1:%d" % self.port, str(backlog)]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.tmp)
        wait_for_port(self.port, process=self.process)

    @property
    def pid(self):
        return self.process.pid

    def stop(self):
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        self.cleanup()


_POSTFIX_MASTER_CF = """\
{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class PostfixSmtpd(_Instance):
    """A private Postfix: its own config_directory, queue_directory and Maildirs.

    Mail to user0..user<mailboxes-1>@DOMAIN is accepted from loopback and delivered by
    virtual(8) to vmail/<local part>/ (Maildir); everything else is refused. The queue is Postfix's
    normal durable queue (cleanup fsyncs each queue file before smtpd answers 250).
    """

    def __init__(self, port=None, process_limit=100, mailboxes=16):
        super().__init__("mw-postfix-")
        self.port = port or free_port()
        self.etc = os.path.join(self.tmp, "etc")
        self.queue = os.path.join(self.tmp, "spool")
        self.data = os.path.join(self.tmp, "data")
        self.vmail = os.path.join(self.tmp, "vmail")
        self.log_file = os.path.join(self.tmp, "postfix.log")
        for path in (self.etc, self.queue, self.data, self.vmail):
            os.makedirs(path)
        os.chmod(self.tmp, 0o755)
        nobody = _ids("nobody", "nogroup")
        postfix_ids = _ids("postfix", "postfix")
        os.chown(self.vmail, *nobody)
        os.chown(self.data, *postfix_ids)
        # virtual(8) refuses regexp substitutions, so the mailboxes are listed:
        # user0 .. user<mailboxes-1>, plus the load generators' senders.
        with open(os.path.join(self.etc, "vmailbox"), "w") as handle:
            for local in ["user%d" % i for i in range(mailboxes)] + ["blaster", "generator", "postmaster"]:
                handle.write("%s@%s %s/\n" % (local, DOMAIN, local))
        main_cf = {
            "compatibility_level": "3.6",
            "queue_directory": self.queue,
            "data_directory": self.data,
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": "postfix-private." + DOMAIN,
            "mydomain": DOMAIN,
            "myorigin": "$myhostname",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mydestination": "",
            "mynetworks": "127.0.0.0/8",
            "relay_domains": "",
            "virtual_mailbox_domains": DOMAIN,
            "virtual_mailbox_base": self.vmail,
            "virtual_mailbox_maps": "texthash:" + os.path.join(self.etc, "vmailbox"),
            "virtual_uid_maps": "static:%d" % nobody[0],
            "virtual_gid_maps": "static:%d" % nobody[1],
            "virtual_minimum_uid": "1",
            "virtual_mailbox_limit": "0",
            "message_size_limit": "209715200",
            "smtpd_recipient_restrictions": "permit_mynetworks, reject",
            "smtpd_relay_restrictions": "permit_mynetworks, reject",
            "smtpd_client_connection_count_limit": "0",
            "smtpd_client_connection_rate_limit": "0",
            "smtpd_client_message_rate_limit": "0",
            "smtpd_client_recipient_rate_limit": "0",
            "default_process_limit": str(process_limit),
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "biff": "no",
            "smtputf8_enable": "no",
            "maillog_file": self.log_file,
            "maillog_file_prefixes": self.tmp,
            "smtpd_banner": "$myhostname ESMTP Postfix (private instance)",
        }
        with open(os.path.join(self.etc, "main.cf"), "w") as handle:
            for key, value in main_cf.items():
                handle.write("%s = %s\n" % (key, value))
        with open(os.path.join(self.etc, "master.cf"), "w") as handle:
            handle.write(_POSTFIX_MASTER_CF.format(port="127.0.0.1:%d" % self.port))
        # Creates the queue's directories with Postfix's own ownership rules.
        self._postfix("check", check=False)
        self._postfix("start")
        try:
            wait_for_port(self.port, timeout_s=30)
        except RuntimeError:
            raise RuntimeError("private Postfix did not start:\n" + self.log_text()[-3000:])

    def _postfix(self, *command, check=True):
        return subprocess.run(["postfix", "-c", self.etc] + list(command), check=check,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def log_text(self):
        try:
            with open(self.log_file, errors="replace") as handle:
                return handle.read()
        except FileNotFoundError:
            return ""

    def master_pid(self):
        try:
            with open(os.path.join(self.queue, "pid", "master.pid")) as handle:
                return int(handle.read().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None

    def queue_size(self):
        """Messages in the queue (incoming, active, deferred, maildrop, hold)."""
        total = 0
        for sub in ("maildrop", "incoming", "active", "deferred", "hold"):
            for _root, _dirs, files in os.walk(os.path.join(self.queue, sub)):
                total += len(files)
        return total

    def delivered(self, mailbox=None):
        """Messages delivered to Maildirs (one mailbox, or all)."""
        total = 0
        roots = [os.path.join(self.vmail, mailbox)] if mailbox else [
            os.path.join(self.vmail, name) for name in os.listdir(self.vmail)]
        for root in roots:
            for sub in ("new", "cur"):
                path = os.path.join(root, sub)
                if os.path.isdir(path):
                    total += len(os.listdir(path))
        return total

    def maildir_files(self, mailbox):
        paths = []
        for sub in ("new", "cur"):
            path = os.path.join(self.vmail, mailbox, sub)
            if os.path.isdir(path):
                paths.extend(os.path.join(path, name) for name in sorted(os.listdir(path)))
        return paths

    def wait_delivered(self, count, timeout_s=120):
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            if self.delivered() >= count:
                return True
            time.sleep(0.1)
        return False

    def stop(self):
        if os.path.exists(self.etc):
            self._postfix("stop", check=False)
            # master exits after its children; wait for it so the port is free again.
            deadline = time.time() + 15
            while self.master_pid() is not None and time.time() < deadline:
                pid = self.master_pid()
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
        self.cleanup()


class Dovecot(_Instance):
    """A private Dovecot serving POP3 from Maildirs under its temp directory.

    users: {address: password}. Mail is owned by nobody; maildir(address) is where a
    mailbox's Maildir is.
    """

    def __init__(self, users, port=None, apop=True):
        super().__init__("mw-dovecot-")
        os.chmod(self.tmp, 0o755)
        self.port = port or free_port()
        self.users = dict(users)
        self.mail = os.path.join(self.tmp, "mail")
        self.base = os.path.join(self.tmp, "run")
        self.state = os.path.join(self.tmp, "state")
        self.log_file = os.path.join(self.tmp, "dovecot.log")
        for path in (self.mail, self.base, self.state):
            os.makedirs(path)
        self.uid, self.gid = _ids("nobody", "nogroup")
        os.chown(self.mail, self.uid, self.gid)
        self.passwd = os.path.join(self.tmp, "passwd")
        with open(self.passwd, "w") as handle:
            for user, password in self.users.items():
                handle.write("%s:{PLAIN}%s\n" % (user, password))
        self.config = os.path.join(self.tmp, "dovecot.conf")
        with open(self.config, "w") as handle:
            handle.write(_DOVECOT_CONF.format(
                base=self.base, state=self.state, log=self.log_file, mail=self.mail, passwd=self.passwd,
                port=self.port, name=os.path.basename(self.tmp), uid=self.uid, gid=self.gid,
                mechanisms="plain login apop" if apop else "plain login"))
        subprocess.run(["dovecot", "-c", self.config], check=True)
        try:
            wait_for_port(self.port)
        except RuntimeError:
            raise RuntimeError("private Dovecot did not start:\n" + self.log_text()[-3000:])

    def maildir(self, user):
        return os.path.join(self.mail, user, "Maildir")

    def fill(self, user, count, size=1024, seed=1, distinct=64):
        """Writes `count` generated messages into user's Maildir; returns their paths."""
        names = write_maildir(self.maildir(user), count, size=size, seed=seed, distinct=distinct)
        chown_tree(os.path.join(self.mail, user), self.uid, self.gid)
        return [os.path.join(self.maildir(user), "new", name) for name in names]

    def message_files(self, user):
        paths = []
        for sub in ("new", "cur"):
            path = os.path.join(self.maildir(user), sub)
            if os.path.isdir(path):
                paths.extend(os.path.join(path, name) for name in os.listdir(path))
        return paths

    def master_pid(self):
        try:
            with open(os.path.join(self.base, "master.pid")) as handle:
                return int(handle.read().strip())
        except (FileNotFoundError, ValueError):
            return None

    def log_text(self):
        try:
            with open(self.log_file, errors="replace") as handle:
                return handle.read()
        except FileNotFoundError:
            return ""

    def stop(self):
        pid = self.master_pid()
        if pid is not None:
            subprocess.run(["doveadm", "-c", self.config, "stop"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            deadline = time.time() + 15
            while time.time() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
        self.cleanup()


_DOVECOT_CONF = """\
# A private instance: everything under one temporary directory, loopback only.
instance_name = {name}
base_dir = {base}
state_dir = {state}
log_path = {log}
protocols = pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
mail_location = maildir:{mail}/%u/Maildir
mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = 1
first_valid_gid = 1
pop3_uidl_format = %08Xu%08Xv
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {passwd}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={mail}/%u
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


def _ids(user, group):
    import grp
    import pwd
    return pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid


class Mailwing(_Instance):
    """mailwing serve on free loopback ports with its own data_dir."""

    def __init__(self, binary, users, durability="fsync", shards=None, backend="auto", extra=None,
                 data_dir=None):
        super().__init__("mw-mailwing-")
        self.binary = binary
        self.data_dir = data_dir or os.path.join(self.tmp, "data")
        config = {
            "hostname": "mx." + DOMAIN,
            "data_dir": self.data_dir,
            "durability": durability,
            "io_backend": backend,
            "smtp": {"listen": ["127.0.0.1:0"], "max_message_bytes": 209715200},
            "pop3": {"listen": ["127.0.0.1:0"]},
            "domains": [DOMAIN],
            "users": [{"address": user, "password": password} for user, password in users.items()],
        }
        if shards is not None:
            config["shards"] = shards
        for key, value in (extra or {}).items():
            if isinstance(value, dict) and isinstance(config.get(key), dict):
                config[key].update(value)
            else:
                config[key] = value
        self.config_path = os.path.join(self.tmp, "config.json")
        with open(self.config_path, "w") as handle:
            json.dump(config, handle)
        self.log_path = os.path.join(self.tmp, "mailwing.log")
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen([binary, "serve", "--config", self.config_path],
                                        stdout=self._log, stderr=self._log)
        self.smtp_port = None
        self.pop3_port = None
        deadline = time.time() + 60
        while time.time() < deadline:
            text = self.log_text()
            if " ready" in text:
                smtp = re.findall(r"smtp listening on [\d.]+:(\d+)", text)
                pop3 = re.findall(r"pop3 listening on [\d.]+:(\d+)", text)
                self.smtp_port = int(smtp[-1]) if smtp else None
                self.pop3_port = int(pop3[-1]) if pop3 else None
                return
            if self.process.poll() is not None:
                raise RuntimeError("mailwing exited with %s:\n%s" % (self.process.returncode, text[-3000:]))
            time.sleep(0.02)
        raise RuntimeError("mailwing did not get ready:\n" + self.log_text()[-3000:])

    @property
    def pid(self):
        return self.process.pid

    def log_text(self):
        with open(self.log_path, errors="replace") as handle:
            return handle.read()

    def halt(self):
        """Stops the server (SIGTERM, then SIGKILL after a minute) but keeps its data."""
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
            self._log.close()
        return self

    def stop(self):
        self.halt()
        self.cleanup()
