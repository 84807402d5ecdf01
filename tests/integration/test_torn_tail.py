"""A mailbox log whose end is damaged (a torn write, garbage, a half record) is cut back
to its last good record at startup: the log says what was dropped, earlier messages stay
intact and new mail lands right after them (record.hh's recovery rule)."""

import os
import re
import unittest

import harness
from harness import Server, make_message

ALICE = "alice@example.test"


def read_bytes(path):
    with open(path, "rb") as handle:
        return handle.read()


class TornTailTest(unittest.TestCase):
    def setUp(self):
        # No checkpoint during the test: until one runs, the journal holds every record.
        self.server = Server(self, extra={"store": {"checkpoint_interval_ms": 3600000}})
        self.sent = []

    def deliver(self, count, recipient=ALICE):
        with self.server.client() as client:
            client.expect("EHLO client.test", 250)
            for _ in range(count):
                tag = "torn-%d" % len(self.sent)
                message = make_message(tag, body_bytes=500 + 300 * len(self.sent), dot_lines=True)
                self.assertEqual(client.send_message("s@client.test", [recipient], message).code, 250)
                self.sent.append(message)
            client.expect("QUIT", 221)

    def log_file(self):
        return self.server.log_path_for(ALICE)

    def append(self, data):
        with open(self.log_file(), "ab") as handle:
            handle.write(data)

    def assert_intact(self, expected_messages):
        records, whole = self.server.records(ALICE)
        self.assertTrue(whole, "bytes after the last good record")
        self.assertEqual([r.body for r in records if r.kind == 1], expected_messages)
        uids = [r.uid for r in records]
        self.assertEqual(uids, sorted(set(uids)))
        return records

    def torn_tail_line(self, dropped, offset, reason):
        """Checks the log line about the torn tail; returns the "messages kept" count."""
        match = self.server.wait_for_log(r"mailbox alice@example\.test: torn tail: dropped (\d+) bytes "
                                         r"at offset (\d+) \(([^)]*)\); (\d+) messages kept")
        self.assertEqual((int(match.group(1)), int(match.group(2)), match.group(3)),
                         (dropped, offset, reason), match.group(0))
        self.assertEqual(len(re.findall("torn tail", self.server.log())), 1, self.server.log())
        return int(match.group(4))

    def restart_with_damage(self, damage):
        """Stop cleanly, damage alice's log, start again. Returns the good size before."""
        self.assertEqual(self.server.stop(), 0)
        good_bytes = os.path.getsize(self.log_file())
        damage()
        self.server.start()
        return good_bytes

    def deliver_after_and_check(self, good_bytes):
        before = len(self.sent)
        self.deliver(1)
        records = self.assert_intact(self.sent)
        self.assertEqual(records[before].offset, good_bytes, "new mail must land after the good records")
        # And all of that survives another restart without complaint.
        self.server.restart()
        self.assertNotIn("torn tail", self.server.log())
        self.assert_intact(self.sent)

    def test_garbage_appended(self):
        self.deliver(3)
        garbage = b"GARBAGE!" + os.urandom(92)
        good = self.restart_with_damage(lambda: self.append(garbage))
        self.torn_tail_line(100, good, "bad magic")
        self.assertEqual(os.path.getsize(self.log_file()), good)
        self.assert_intact(self.sent)
        self.deliver_after_and_check(good)

    def test_truncated_copy_of_a_valid_record(self):
        self.deliver(3)
        records, _ = self.server.records(ALICE)
        with open(self.log_file(), "rb") as handle:
            handle.seek(records[-1].offset)
            last = handle.read()
        self.assertEqual(len(last), records[-1].size)
        half = last[:len(last) // 2]
        good = self.restart_with_damage(lambda: self.append(half))
        self.torn_tail_line(len(half), good, "record runs past the end of the file")
        self.assert_intact(self.sent)
        self.deliver_after_and_check(good)

    def test_truncated_header(self):
        self.deliver(2)
        records, _ = self.server.records(ALICE)
        with open(self.log_file(), "rb") as handle:
            header = handle.read(40)
        good = self.restart_with_damage(lambda: self.append(header[:23]))
        self.torn_tail_line(23, good, "truncated record header")
        self.deliver_after_and_check(good)

    def test_bad_payload_checksum_after_a_crash(self):
        # A record whose payload did not fully reach the disk before a crash: its CRC is
        # wrong. Recovery drops it, and the journal (synced before the 250) brings it back.
        self.deliver(3)
        records, _ = self.server.records(ALICE)
        last = records[-1]
        self.server.kill()
        with open(self.log_file(), "r+b") as handle:
            handle.seek(last.offset + 40 + len(last.payload) // 2)
            byte = handle.read(1)
            handle.seek(-1, os.SEEK_CUR)
            handle.write(bytes([byte[0] ^ 0x20]))
        self.server.start()
        self.torn_tail_line(last.size, last.offset, "bad payload checksum")
        self.server.wait_for_log(r"recovery: replayed \d+ journal records")
        self.assert_intact(self.sent)
        self.deliver_after_and_check(last.offset + last.size)

    # An index file covers the start of the log: the kept count still includes it.
    def test_log_line_counts_every_kept_record(self):
        self.deliver(3)
        good = self.restart_with_damage(lambda: self.append(b"GARBAGE!"))
        self.assertEqual(self.torn_tail_line(8, good, "truncated record header"), 3)

    def test_whole_log_garbage(self):
        self.deliver(1)
        good = self.restart_with_damage(lambda: os.truncate(self.log_file(), 0) or self.append(b"\x00" * 4096))
        self.assertGreater(good, 0)
        self.assertEqual(self.torn_tail_line(4096, 0, "bad magic"), 0)
        self.sent.clear()
        self.deliver_after_and_check(0)

    def test_other_mailboxes_untouched(self):
        self.deliver(2, "bob@example.test")
        self.deliver(2)
        bob_before = read_bytes(self.server.log_path_for("bob@example.test"))
        self.restart_with_damage(lambda: self.append(b"\xff" * 33))
        self.assertEqual(len(re.findall("torn tail", self.server.log())), 1, self.server.log())
        self.assertEqual(read_bytes(self.server.log_path_for("bob@example.test")), bob_before)

    def test_journal_restores_records_the_log_lost(self):
        # After a crash the log may have lost writes that were acknowledged; the journal
        # (synced before every 250) has them and recovery puts them back.
        self.deliver(5)
        records, _ = self.server.records(ALICE)
        self.server.kill()
        cut = records[2].offset + 57  # inside the third record
        os.truncate(self.log_file(), cut)
        self.server.start()
        self.torn_tail_line(57, records[2].offset, "record runs past the end of the file")
        self.server.wait_for_log(r"recovery: replayed \d+ journal records")
        restored = self.assert_intact(self.sent)
        self.assertEqual([r.uid for r in restored], [r.uid for r in records])
        self.deliver_after_and_check(os.path.getsize(self.log_file()))

    def test_journal_replay_is_idempotent(self):
        # SIGKILL without damage: the log already has everything; replay adds nothing.
        self.deliver(4)
        before = read_bytes(self.log_file())
        self.server.kill()
        self.server.start()
        self.assertEqual(read_bytes(self.log_file()), before)
        self.assert_intact(self.sent)
        self.server.kill()
        self.server.start()
        self.assertEqual(read_bytes(self.log_file()), before)


if __name__ == "__main__":
    harness.main()
