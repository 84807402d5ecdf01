"""A bad configuration or command line: one clear line on stderr and a non-zero exit (2
for command-line mistakes), never a crash, a stack trace or a server that runs anyway."""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import unittest

import harness
from harness import run_binary


def base_config(tmp):
    return {
        "hostname": "mx.example.test",
        "data_dir": os.path.join(tmp, "data"),
        "shards": 1,
        "io_backend": harness.BACKEND,
        "smtp": {"listen": ["127.0.0.1:0"]},
        "pop3": {"listen": ["127.0.0.1:0"]},
        "domains": ["example.test"],
        "users": [{"address": "alice@example.test", "password": "x"}],
    }


class ConfigErrorTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="mailwing-config-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def write(self, text, name="config.json"):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as handle:
            handle.write(text if isinstance(text, str) else json.dumps(text))
        return path

    def serve(self, *args):
        return run_binary(["serve"] + list(args), timeout_s=30)

    def assert_one_line(self, done, code, *needles):
        self.assertEqual(done.returncode, code, done.stderr)
        lines = done.stderr.splitlines()
        self.assertEqual(len(lines), 1, done.stderr)
        self.assertTrue(lines[0].startswith("mailwing: "), lines[0])
        for needle in needles:
            self.assertIn(needle, lines[0])
        self.assertEqual(done.stdout, "")

    def config_error(self, change, *needles):
        config = base_config(self.tmp)
        change(config)
        done = self.serve("--config", self.write(config))
        self.assert_one_line(done, 1, *needles)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "data")), "started anyway")

    def test_the_base_config_is_good(self):
        # The errors below come from one change each to this config, which is fine as it is.
        process = subprocess.Popen([harness.BINARY, "serve", "--config", self.write(base_config(self.tmp))],
                                   stderr=subprocess.PIPE, text=True)
        try:
            for line in process.stderr:
                if " ready" in line:
                    break
            else:
                self.fail("mailwing exited with %s" % process.wait())
        finally:
            process.terminate()
            process.stderr.close()
            self.assertEqual(process.wait(timeout=30), 0)

    def test_unknown_keys(self):
        self.config_error(lambda c: c.update(bogus=1), '"bogus"', "unknown key")
        self.config_error(lambda c: c["smtp"].update(max_recipient=5), "max_recipient")
        self.config_error(lambda c: c["users"][0].update(pasword="x"), "pasword")

    def test_bad_values(self):
        self.config_error(lambda c: c.update(shards="two"), "shards")
        self.config_error(lambda c: c.update(shards=-1), "shards")
        self.config_error(lambda c: c.update(durability="maybe"), "durability")
        self.config_error(lambda c: c.update(io_backend="kqueue"), "io_backend")
        self.config_error(lambda c: c.update(log_level="loud"), "log_level")
        self.config_error(lambda c: c.update(hostname=5), "hostname")
        self.config_error(lambda c: c["smtp"].update(max_recipients=0), "smtp.max_recipients")
        self.config_error(lambda c: c["smtp"].update(max_message_bytes=10), "smtp.max_message_bytes")
        self.config_error(lambda c: c["smtp"].update(max_message_bytes=1.5), "smtp.max_message_bytes")
        self.config_error(lambda c: c["smtp"].update(command_timeout_ms=1), "smtp.command_timeout_ms")
        self.config_error(lambda c: c["smtp"].update(listen=["127.0.0.1:99999"]), "smtp.listen")
        self.config_error(lambda c: c["smtp"].update(listen=["localhost"]), "smtp.listen")
        self.config_error(lambda c: c["smtp"].update(listen=[]), "smtp.listen")
        self.config_error(lambda c: c.update(users=[{"address": "no-at-sign", "password": "x"}]), "users")
        self.config_error(lambda c: c.update(users=[{"address": "a@other.test", "password": "x"}]), "a@other.test")
        self.config_error(lambda c: c.update(postmaster="nobody@example.test"), "postmaster")
        self.config_error(lambda c: c.update(catch_all={"example.test": "nobody@example.test"}), "catch_all")
        self.config_error(lambda c: c.update(catch_all={"other.test": "alice@example.test"}), "catch_all")

    def test_malformed_password_hash_names_the_user(self):
        # Before, the server started and bob could never log in, with nothing said.
        good = ("$argon2id$v=19$m=65536,t=2,p=1$JxPwcw3KV/l53hqTCK/FTQ$"
                "Is7kUtR2j0Pq3Ki7MRBdKGbTB1mvbUaiSInRR5cRwWk")
        for bad in (good[:-12], good.replace("$v=19$", "$v=99$"), "$argon2id$garbage",
                    good.replace("argon2id", "argon2i")):
            self.config_error(
                lambda c: c["users"].append({"address": "bob@example.test", "password": bad}),
                "users[1].password", '"bob@example.test"', "$argon2id$")

    def test_malformed_json(self):
        for text, needle in [("{", "JSON"), ("", "JSON"), ("[1, 2]", "object"),
                             ('{"shards": 1, "shards": 2}', "duplicate")]:
            done = self.serve("--config", self.write(text))
            self.assert_one_line(done, 1, needle)

    def test_unreadable_file(self):
        missing = os.path.join(self.tmp, "missing.json")
        self.assert_one_line(self.serve("--config", missing), 1, missing, "No such file")
        self.assert_one_line(self.serve("--config", self.tmp), 1, "Is a directory")

    def test_bad_command_line(self):
        config = self.write(base_config(self.tmp))
        for args, needle in [(["serve", "--bogus", "x"], "--bogus"),
                             (["serve", "--config"], "--config"),
                             (["serve", "--config", config, "--shards"], "--shards"),
                             (["serve", "--config", config, "--shards", "abc"], "--shards"),
                             (["serve", "--config", config, "--io-backend", "kqueue"], "--io-backend"),
                             (["serve", "--config", config, "--durability", "later"], "--durability"),
                             (["serve", "--config", config, "--log-level", "loud"], "--log-level"),
                             (["frobnicate"], "frobnicate")]:
            done = run_binary(args)
            self.assert_one_line(done, 2, needle)
        done = run_binary([])
        self.assertEqual(done.returncode, 2)
        self.assertIn("usage:", done.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "data")))

    # A malformed --smtp-listen/--pop3-listen value is a bad argument: exit 2.
    def test_bad_listen_flag_exits_2(self):
        config = self.write(base_config(self.tmp))
        self.assert_one_line(run_binary(["serve", "--config", config, "--smtp-listen", "nonsense"]),
                             2, "smtp-listen")

    def test_flag_values_checked_like_the_config(self):
        config = self.write(base_config(self.tmp))
        done = run_binary(["serve", "--config", config, "--shards", "300"])
        self.assertNotEqual(done.returncode, 0)
        self.assertEqual(len(done.stderr.splitlines()), 1, done.stderr)
        self.assertIn("shards", done.stderr)

    def test_version_and_help(self):
        done = run_binary(["--version"])
        self.assertEqual(done.returncode, 0)
        self.assertTrue(done.stdout.startswith("mailwing "), done.stdout)
        done = run_binary(["--help"])
        self.assertEqual(done.returncode, 0)
        self.assertIn("usage:", done.stdout)

    def runtime_error(self, config, *needles):
        done = self.serve("--config", self.write(config))
        self.assertEqual(done.returncode, 1, done.stderr)
        # Startup logs come first; the error is the last line, and the only "mailwing:" one.
        last = done.stderr.splitlines()[-1]
        self.assertTrue(last.startswith("mailwing: "), done.stderr)
        for needle in needles:
            self.assertIn(needle, last)
        self.assertNotIn("terminate called", done.stderr)

    def test_port_in_use(self):
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = base_config(self.tmp)
        config["smtp"]["listen"] = ["127.0.0.1:%d" % port]
        self.runtime_error(config, "127.0.0.1:%d" % port, "Address already in use")

    def test_data_dir_not_a_directory(self):
        config = base_config(self.tmp)
        with open(os.path.join(self.tmp, "file"), "w") as handle:
            handle.write("x")
        config["data_dir"] = os.path.join(self.tmp, "file", "data")
        self.runtime_error(config, "Not a directory")

    def test_data_dir_in_use(self):
        server = harness.Server(self)
        config = base_config(self.tmp)
        config["data_dir"] = server.data_dir
        self.runtime_error(config, "in use")
        server.assert_alive(self)


if __name__ == "__main__":
    harness.main()
