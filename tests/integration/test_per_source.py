# SPDX-License-Identifier: ISC
"""max_per_source (xinetd's per_source): requests in progress from one
client address; beyond it a new one is refused at once, while other
addresses and the same address after a request ends are served."""

import re
import unittest

from ssdtest import (HAVE_127_0_0_2, DaemonTestCase, closed_by_peer, conf,
                     model_conf, recv_within, run_binary, send_all,
                     wait_for)

skip_unless_127_0_0_2 = unittest.skipUnless(HAVE_127_0_0_2,
                                            "cannot bind 127.0.0.2")


class PerSourceTests(DaemonTestCase):

    def held(self, d, name, bind=None):
        s = d.connect(name, bind=bind)
        send_all(s, b"hold")
        self.assertEqual(recv_within(s), b"hold")
        return s

    def check_model(self, model):
        d = self.daemon(conf(model_conf("e", model,
                                        extra="max_per_source = 2;")))
        a, b = self.held(d, "e"), self.held(d, "e")
        third = d.connect("e")
        self.assertTrue(closed_by_peer(third), "third client was served")
        d.wait_log(r"listener=e peer=127\.0\.0\.1:\d+: refused: "
                   r"max_per_source reached")
        if HAVE_127_0_0_2:
            other = self.held(d, "e", bind=("127.0.0.2", 0))
            other.close()
        a.close()

        # The slot comes back once the daemon has seen the first client
        # leave (under fork: once it has reaped its process).
        def served_again():
            s = d.connect("e")
            try:
                send_all(s, b"again")
                return recv_within(s) == b"again"
            except OSError:
                return False
            finally:
                s.close()
        wait_for(served_again, 10, what="a slot to come back")
        b.close()

    def test_thread(self):
        self.check_model("thread")

    def test_fork(self):
        self.check_model("fork")

    def test_event(self):
        self.check_model("event")

    def test_event_workers(self):
        self.check_model("event-workers")

    def test_unix_listener_is_a_config_error(self):
        d = self.daemon(conf(model_conf("u", "event", address="@DIR@/u.sock",
                                        extra="max_per_source = 1;")),
                        start=False)
        r = run_binary(["-t", "-c", d.conf_path])
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr.decode(), r"%s:\d+: \"max_per_source\" "
                         r"does not apply to unix listeners"
                         % re.escape(d.conf_path))
