# SPDX-License-Identifier: ISC
"""Running as a system service (issue 5): socket activation driven the
way systemd does it (sockets at fds 3.., LISTEN_PID = the daemon's own
pid, LISTEN_FDS, LISTEN_FDNAMES); the privilege drop as /proc shows it
(when run as root); -D with a pid file; the watchdog; and the unit file
(systemd-analyze verify, and an exposure of 2.0 or less from
systemd-analyze security --offline=true)."""

import grp
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import ssdtest
from ssdtest import (IO_TIMEOUT, MAX_ITER, READY_TIMEOUT, ROOT, SD_VARS,
                     DaemonTestCase, Deadline, binary, children_of, conf,
                     exchange, finish, listener_conf, nothing_arrives,
                     proc_stat, recv_until_eof, run_binary, send_all,
                     wait_for)

IS_ROOT = os.geteuid() == 0


def fd_socket_inode(pid, fd):
    """The inode of the socket at /proc/PID/fd/FD, or None."""
    try:
        link = os.readlink("/proc/%d/fd/%d" % (pid, fd))
    except OSError:
        return None
    m = re.match(r"socket:\[(\d+)\]$", link)
    return int(m.group(1)) if m else None


def unix_echo(path, payload=b"ping\n", timeout=IO_TIMEOUT):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.connect(path)
        send_all(s, payload, timeout)
        s.shutdown(socket.SHUT_WR)
        return recv_until_eof(s, timeout)
    finally:
        s.close()


def unix_refused(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(IO_TIMEOUT)
        s.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        return True
    finally:
        s.close()
    return False


def gone_or_zombie(pid):
    st = proc_stat(pid)
    return st is None or st[0] in ("Z", "X")


# ---------------------------------------------------------------------------
# 5. Socket activation.


class SocketActivationTests(DaemonTestCase):
    """The test plays systemd: it binds the sockets, and the daemon finds
    them at fds 3.. with LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID set to
    its own pid (ssdtest's launcher: the process that execs the daemon)."""

    def activate(self, d, socks, names, listen_pid=True):
        """Gives d (not started) socks at 3.. named names; LISTEN_PID is
        d's own pid, or else ours (not the daemon's)."""
        d.listen_fds = [s.fileno() for s in socks]
        d.extra_env.update({"LISTEN_FDS": str(len(socks)),
                            "LISTEN_FDNAMES": ":".join(names)})
        if listen_pid:
            d.pid_env = ("LISTEN_PID",)
        else:
            d.extra_env["LISTEN_PID"] = str(os.getpid())
        return d

    def own(self, s):
        """Our copy of a passed socket, closed in cleanup (or earlier, to
        show that the daemon's copy is the one that serves)."""
        self.addCleanup(s.close)
        return s

    def tcp(self):
        s = self.own(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        return s

    def udp(self):
        s = self.own(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        s.bind(("127.0.0.1", 0))
        return s

    def unix(self, path):
        s = self.own(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
        s.bind(path)
        s.listen(16)
        return s

    def test_inherited_sockets_by_name_and_by_address(self):
        text = conf(listener_conf("name1"),
                    listener_conf("name2", type="dgram"),
                    listener_conf("u", address="@DIR@/act.sock"),
                    listener_conf("own", address="@DIR@/own.sock"))
        d = self.daemon(text, start=False)
        act = d.path("act.sock")
        socks = [self.tcp(), self.udp(), self.unix(act)]
        self.activate(d, socks, ["name1", "name2", "other"])
        inodes = [os.fstat(s.fileno()).st_ino for s in socks]
        ports = [socks[0].getsockname()[1], socks[1].getsockname()[1]]
        d.start()
        log = d.log()
        # By name: the port logged is the one of our socket...
        for name, port, kind in (("name1", ports[0], "stream"),
                                 ("name2", ports[1], "dgram")):
            self.assertRegex(log, r"listener=%s: listening on 127\.0\.0\.1:"
                             r"%d \(%s, .*inherited socket \"%s\"\)"
                             % (name, port, kind, name))
            self.assertEqual(d.listener(name).port, port)
        # ...by address: the unix socket named "other".
        self.assertRegex(log, r"listener=u: listening on %s \(stream, .*"
                         r"inherited socket \"other\"\)" % re.escape(act))
        # The very sockets we made, at 3, 4, 5; nothing bound instead.
        for fd, ino in zip((3, 4, 5), inodes):
            self.assertEqual(fd_socket_inode(d.pid, fd), ino, "fd %d" % fd)
        for name in ("name1", "name2", "u"):
            self.assertEqual(len(re.findall(r"listener=%s: listening on "
                                            % name, log)), 1)
        self.assertNotRegex(log, r"listener=own: .*inherited")
        self.assertNotRegex(log, r"matches no listener")
        # Our copies go: the daemon's serve.
        for s in socks:
            s.close()
        for name in ("name1", "name2", "u", "own"):
            self.assertEqual(d.echo_once(name, b"act\n"), b"act\n", name)

        # A SIGHUP keeps them: same ports, still serving.
        lines = d.reload()
        self.assertTrue(any(ln.startswith("STATUS=reloaded")
                            for ln in lines), lines)
        for name in ("name1", "name2", "u"):
            self.assertRegex(d.log(), r"listener=%s: keeps its socket "
                             % name)
        self.assertEqual(d.listener("name1").port, ports[0])
        self.assertEqual(d.listener("name2").port, ports[1])
        for fd, ino in zip((3, 4, 5), inodes):
            self.assertEqual(fd_socket_inode(d.pid, fd), ino, "fd %d" % fd)
        for name in ("name1", "name2", "u", "own"):
            self.assertEqual(d.echo_once(name, b"again\n"), b"again\n", name)

        # At stop, the file the daemon made goes; the inherited one stays
        # (it belongs to the service manager).
        self.assertStopsCleanly(d)
        self.assertFalse(os.path.lexists(d.path("own.sock")))
        self.assertTrue(os.path.lexists(act),
                        "the inherited unix socket's file was removed")

    def test_inherited_unix_listener_removed_by_reload_keeps_its_file(self):
        text = conf(listener_conf("e"),
                    listener_conf("u", address="@DIR@/act.sock"))
        d = self.daemon(text, start=False)
        act = d.path("act.sock")
        s = self.unix(act)
        self.activate(d, [s], ["u"])
        d.start()
        s.close()
        self.assertEqual(unix_echo(act, b"u\n"), b"u\n")
        d.reload(conf(listener_conf("e")))
        wait_for(lambda: unix_refused(act), 5, what="u no longer served")
        self.assertTrue(os.path.lexists(act),
                        "removed an inherited socket's file on reload")
        self.assertStopsCleanly(d)
        self.assertTrue(os.path.lexists(act))

    def test_inet_by_address_and_unmatched_fd_closed(self):
        byport = self.tcp()
        port = byport.getsockname()[1]
        text = conf(listener_conf("byport", port=port))
        d = self.daemon(text, start=False)
        stray_path = d.path("stray.sock")
        stray = self.unix(stray_path)
        stray_ino = os.fstat(stray.fileno()).st_ino
        self.activate(d, [byport, stray], ["x", "stray"])
        d.start()
        self.assertRegex(d.log(), r"listener=byport: listening on "
                         r"127\.0\.0\.1:%d \(stream, .*inherited socket "
                         r"\"x\"\)" % port)
        # The stray is logged and closed: not in the daemon any more.
        d.wait_log(r"inherited socket 4 \(\"stray\"\) matches no listener")
        self.assertNotEqual(fd_socket_inode(d.pid, 4), stray_ino)
        byport.close()
        stray.close()
        self.assertEqual(d.echo_once("byport", b"p\n"), b"p\n")
        self.assertTrue(unix_refused(stray_path),
                        "the unmatched socket still accepts")
        self.assertStopsCleanly(d)

    def test_named_socket_of_the_wrong_type_is_a_startup_error(self):
        text = conf(listener_conf("a", address="@DIR@/a.sock"),
                    listener_conf("name1"))
        d = self.activate(self.daemon(text, start=False), [self.udp()],
                          ["name1"])
        d.start(ready=False)
        self.assertEqual(d.wait_exit(), 1)
        line = [i for i, ln in enumerate(text.splitlines(), 1)
                if '"name1"' in ln][0]
        self.assertRegex(d.log(), r"%s:%d: listener name1: the inherited "
                         r"socket 3 .*stream" % (re.escape(d.conf_path),
                                                 line))
        self.assertFalse(d.has_notify("READY=1"))

    def test_name_match_wins_over_an_earlier_address_match(self):
        # LISTEN_FDNAMES says whose socket it is: a listener earlier in
        # the file on the same address (port 0: any port) must not take
        # it, whatever the order of the listeners.
        s = self.tcp()
        port = s.getsockname()[1]
        text = conf(listener_conf("first"), listener_conf("name1"))
        d = self.activate(self.daemon(text, start=False), [s], ["name1"])
        d.start()
        s.close()
        self.assertEqual(d.listener("name1").port, port,
                         "the socket named name1 went to another listener;"
                         " log:\n%s" % d.log())
        self.assertNotEqual(d.listener("first").port, port)
        self.assertEqual(d.echo_once("name1"), b"ping\n")
        self.assertEqual(d.echo_once("first"), b"ping\n")

    def tcp_udp_same_port(self):
        """A UDP and a TCP socket on one 127.0.0.1 port (as a .socket unit
        with ListenDatagram= and ListenStream= for an RFC 862 echo)."""
        for _ in range(20):
            u = self.udp()
            t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                t.bind(u.getsockname())
            except OSError:
                t.close()
                u.close()
                continue
            t.listen(16)
            return u, self.own(t)
        self.skipTest("no port free for both TCP and UDP")

    def test_address_match_needs_the_same_type(self):
        # Unnamed sockets matched by address: the datagram one at fd 3
        # is not the stream listener's, the stream one at fd 4 is.
        u, t = self.tcp_udp_same_port()
        port = u.getsockname()[1]
        text = conf(listener_conf("st", port=port),
                    listener_conf("dg", port=port, type="dgram"))
        d = self.activate(self.daemon(text, start=False), [u, t],
                          ["sockserverd", "sockserverd"])
        d.start()
        for name, kind in (("st", "stream"), ("dg", "dgram")):
            self.assertRegex(d.log(), r"listener=%s: listening on 127\.0\.0"
                             r"\.1:%d \(%s, .*inherited" % (name, port, kind))
        u.close()
        t.close()
        self.assertEqual(d.echo_once("st"), b"ping\n")
        self.assertEqual(d.echo_once("dg"), b"ping\n")

    def test_wrong_listen_pid_is_ignored(self):
        s = self.tcp()
        port = s.getsockname()[1]
        d = self.activate(self.daemon(conf(listener_conf("name1")),
                                      start=False), [s], ["name1"],
                          listen_pid=False)
        d.start()
        self.assertNotIn("inherited", d.log())
        self.assertNotEqual(d.listener("name1").port, port)
        self.assertEqual(d.echo_once("name1", b"own\n"), b"own\n")
        self.assertStopsCleanly(d)


# ---------------------------------------------------------------------------
# 6. Privileges.


def _ids(user, group):
    try:
        return pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid
    except KeyError:
        return None


NOBODY = _ids("nobody", "nogroup")


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            k, _, v = ln.partition(":")
            out[k] = v.split()
    return out


class PrivilegeTests(DaemonTestCase):

    @unittest.skipUnless(IS_ROOT, "not running as root")
    @unittest.skipUnless(NOBODY, "no user nobody or group nogroup")
    def test_drop_to_nobody_nogroup(self):
        uid, gid = NOBODY
        d = self.daemon(conf(listener_conf("e"),
                             listener_conf("f", concurrency="fork"),
                             globals_='user = "nobody";\n'
                             'group = "nogroup";'), start=False)
        # READY=1 comes after the drop: nobody must reach the notify
        # socket, as it reaches systemd's.
        os.chmod(d.dir, 0o711)
        os.chmod(d.notify_path, 0o666)
        d.start()
        st = proc_status(d.pid)
        self.assertEqual(st["Uid"], [str(uid)] * 4, st["Uid"])
        self.assertEqual(st["Gid"], [str(gid)] * 4, st["Gid"])
        self.assertEqual(st["Groups"], [str(gid)], st["Groups"])
        # No capability left: root cannot be regained.
        self.assertEqual(int(st["CapPrm"][0], 16), 0)
        self.assertEqual(int(st["CapEff"][0], 16), 0)
        self.assertRegex(d.log(), r"running as uid %d gid %d" % (uid, gid))
        self.assertNotRegex(d.log(), r"running handlers as root")
        # Handlers run as nobody: the fork model's child shows it.
        self.assertEqual(d.echo_once("e"), b"ping\n")
        c = d.connect("f")
        self.assertEqual(exchange(c, b"child\n"), b"child\n")
        kids = wait_for(lambda: children_of(d.pid), 5, what="fork child")
        for pid in kids:
            cst = proc_status(pid)
            self.assertEqual(cst["Uid"], [str(uid)] * 4)
            self.assertEqual(cst["Groups"], [str(gid)])
        self.assertEqual(finish(c), b"")
        # A reload still works without root (nothing new to bind).
        lines = d.reload()
        self.assertTrue(any(ln.startswith("STATUS=reloaded")
                            for ln in lines), lines)
        self.assertEqual(d.echo_once("e", b"after\n"), b"after\n")
        self.assertStopsCleanly(d)

    @unittest.skipUnless(IS_ROOT, "not running as root")
    def test_root_without_user_warns(self):
        d = self.daemon(conf(listener_conf("e")))
        self.assertRegex(d.log(), r"warning: running handlers as root")
        self.assertEqual(proc_status(d.pid)["Uid"][0], "0")

    def test_unknown_user_or_group_is_a_test_error(self):
        d = self.daemon(conf(listener_conf("e"),
                             globals_='pid_file = "/nonexistent/p";\n'
                             'user = "nosuchuser-ssd";\n'
                             'group = "nosuchgroup-ssd";'), start=False)
        r = run_binary(["-t", "-c", d.conf_path])
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 1, err)
        self.assertRegex(err, r"%s:2: .*nosuchuser-ssd" %
                         re.escape(d.conf_path))
        self.assertRegex(err, r"%s:3: .*nosuchgroup-ssd" %
                         re.escape(d.conf_path))
        self.assertNotIn("configuration OK", r.stdout.decode())


# ---------------------------------------------------------------------------
# 7. -D and the pid file.


class Detached:
    """sockserverd -D on a configuration of its own, without NOTIFY_SOCKET.
    The daemon is not our child: it is found by the pid file, or by its
    command line (which names our temporary directory), and ended by PID
    in cleanup."""

    def __init__(self, text):
        self.dir = tempfile.mkdtemp(prefix="ssd-D-")
        self.conf_path = os.path.join(self.dir, "sockserverd.conf")
        with open(self.conf_path, "w") as f:
            f.write(text.replace("@DIR@", self.dir))
        ssdtest.register_kill(self.kill)

    def path(self, name):
        return os.path.join(self.dir, name)

    def run(self, *args):
        env = dict(os.environ)
        for k in SD_VARS:
            env.pop(k, None)
        return subprocess.run([binary(), "-c", self.conf_path, "-l",
                               "debug"] + list(args),
                              stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=env,
                              timeout=READY_TIMEOUT, cwd=self.dir)

    def pids(self):
        """Live processes whose command line names our configuration."""
        out = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/cmdline" % d, "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if self.conf_path.encode() in argv and \
                    not gone_or_zombie(int(d)):
                out.append(int(d))
        return out

    def wait_gone(self, pid, timeout=ssdtest.STOP_TIMEOUT):
        wait_for(lambda: gone_or_zombie(pid), timeout,
                 what="process %d to exit" % pid)

    def kill(self):
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            try:
                self.wait_gone(pid, ssdtest.CLEANUP_STOP_TIMEOUT)
            except AssertionError:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def close(self):
        try:
            self.kill()
        finally:
            ssdtest.unregister_kill(self.kill)
            shutil.rmtree(self.dir, ignore_errors=True)


class DetachTests(DaemonTestCase):

    def detached(self, text):
        dt = Detached(text)
        self.addCleanup(dt.close)
        return dt

    def check_detached(self, dt, pid_path):
        with open(pid_path) as f:
            content = f.read()
        self.assertRegex(content, r"^[0-9]+\n$")
        pid = int(content)
        self.assertEqual(dt.pids(), [pid], "the pid file names another "
                         "process than the daemon")
        self.assertEqual(os.path.realpath("/proc/%d/exe" % pid),
                         os.path.realpath(binary()))
        # Its own session, with no terminal, not its leader (double fork:
        # it can never acquire a terminal again), not our child.
        st = proc_stat(pid)
        sid = os.getsid(pid)
        self.assertEqual(int(st[3]), sid)
        self.assertNotEqual(sid, os.getsid(0))
        self.assertNotEqual(sid, pid, "the daemon leads its session")
        self.assertEqual(st[4], "0", "the daemon has a controlling tty")
        self.assertNotEqual(int(st[1]), os.getpid())
        for fd in (0, 1, 2):
            self.assertEqual(os.readlink("/proc/%d/fd/%d" % (pid, fd)),
                             "/dev/null", "fd %d" % fd)
        self.assertEqual(os.readlink("/proc/%d/cwd" % pid), "/")
        return pid

    def test_detach_with_pid_file(self):
        dt = self.detached(conf(listener_conf("e",
                                              address="@DIR@/e.sock")))
        pid_path = dt.path("d.pid")
        t0 = time.monotonic()
        r = dt.run("-D", "-p", pid_path)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual(r.stdout, b"")
        # Serving as soon as the command returns: no retry needed.
        self.assertEqual(unix_echo(dt.path("e.sock"), b"up\n"), b"up\n")
        self.assertLess(time.monotonic() - t0, READY_TIMEOUT)
        pid = self.check_detached(dt, pid_path)
        os.kill(pid, signal.SIGTERM)
        dt.wait_gone(pid)
        self.assertFalse(os.path.lexists(pid_path), "pid file left")
        self.assertFalse(os.path.lexists(dt.path("e.sock")))

    def test_detach_with_relative_pid_file(self):
        # -p relative to the directory sockserverd was started in, even
        # though the daemon moves to /.
        dt = self.detached(conf(listener_conf("e",
                                              address="@DIR@/e.sock")))
        r = dt.run("-D", "-p", "rel.pid")
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        pid = self.check_detached(dt, dt.path("rel.pid"))
        os.kill(pid, signal.SIGTERM)
        dt.wait_gone(pid)
        self.assertFalse(os.path.lexists(dt.path("rel.pid")))

    def test_detach_with_pid_file_from_config(self):
        dt = self.detached(conf(listener_conf("e", address="@DIR@/e.sock"),
                                globals_='pid_file = "@DIR@/cf.pid";'))
        r = dt.run("-D")
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual(unix_echo(dt.path("e.sock")), b"ping\n")
        pid = self.check_detached(dt, dt.path("cf.pid"))
        os.kill(pid, signal.SIGTERM)
        dt.wait_gone(pid)
        self.assertFalse(os.path.lexists(dt.path("cf.pid")))

    def test_detach_bind_failure_exits_1(self):
        blocker = socket.socket()
        self.addCleanup(blocker.close)
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        port = blocker.getsockname()[1]
        dt = self.detached(conf(
            listener_conf("u", address="@DIR@/u.sock"),
            listener_conf("taken", port=port,
                          extra="reuse_address = false;")))
        r = dt.run("-D", "-p", dt.path("d.pid"))
        self.assertEqual(r.returncode, 1, r.stderr.decode())
        wait_for(lambda: not dt.pids(), 5, what="the daemon to exit")
        self.assertFalse(os.path.lexists(dt.path("d.pid")))
        self.assertFalse(os.path.lexists(dt.path("u.sock")))

    def test_pid_file_from_config_foreground(self):
        d = self.daemon(conf(listener_conf("e"),
                             globals_='pid_file = "@DIR@/cf.pid";'))
        with open(d.path("cf.pid")) as f:
            self.assertEqual(f.read(), "%d\n" % d.pid)
        self.assertStopsCleanly(d)
        self.assertFalse(os.path.lexists(d.path("cf.pid")))

    def test_p_overrides_pid_file(self):
        d = self.daemon(conf(listener_conf("e"),
                             globals_='pid_file = "@DIR@/cf.pid";'),
                        start=False)
        d.args += ["-p", d.path("opt.pid")]
        d.start()
        with open(d.path("opt.pid")) as f:
            self.assertEqual(f.read(), "%d\n" % d.pid)
        self.assertFalse(os.path.lexists(d.path("cf.pid")))
        self.assertStopsCleanly(d)
        self.assertFalse(os.path.lexists(d.path("opt.pid")))


# ---------------------------------------------------------------------------
# 8. The watchdog.


class WatchdogTests(DaemonTestCase):

    @staticmethod
    def count(d):
        d.read_notify()
        return sum(m.split("\n").count("WATCHDOG=1") for m in d.messages)

    def pings(self, d, seconds):
        """The arrival times of the WATCHDOG=1 that come within the next
        seconds (those already there are not counted)."""
        times, seen = [], self.count(d)
        dl = Deadline(seconds)
        for _ in range(MAX_ITER):
            if dl.expired():
                break
            if not nothing_arrives(d.notify, dl.remaining()):
                n = self.count(d)
                times.extend([time.monotonic()] * (n - seen))
                seen = n
        return times

    def watchdog_daemon(self, **env):
        e = {"WATCHDOG_USEC": "200000"}
        e.update(env)
        return self.daemon(conf(listener_conf("e")), env=e)

    def test_pings_every_half_period(self):
        d = self.daemon(conf(listener_conf("e")),
                        env={"WATCHDOG_USEC": "200000"}, start=False)
        d.pid_env = ("WATCHDOG_PID",)
        d.start()
        times = self.pings(d, 1.0)
        self.assertGreaterEqual(len(times), 5, "WATCHDOG=1 in 1 s")
        self.assertLessEqual(len(times), 20, "WATCHDOG=1 in 1 s")
        gaps = sorted(b - a for a, b in zip(times, times[1:]))
        self.assertTrue(0.04 < gaps[len(gaps) // 2] < 0.2,
                        "median interval %.3fs" % gaps[len(gaps) // 2])
        self.assertEqual(d.echo_once("e"), b"ping\n")

    def test_pings_without_watchdog_pid(self):
        d = self.watchdog_daemon()
        self.assertGreaterEqual(len(self.pings(d, 1.0)), 5)

    def test_no_pings_for_another_pid(self):
        d = self.watchdog_daemon(WATCHDOG_PID=str(os.getpid()))
        self.assertEqual(self.pings(d, 1.0), [])
        self.assertEqual(d.echo_once("e"), b"ping\n")

    def test_no_pings_while_stopped(self):
        d = self.watchdog_daemon()
        self.assertGreaterEqual(len(self.pings(d, 0.5)), 2)
        self.addCleanup(d.signal, signal.SIGCONT)
        d.signal(signal.SIGSTOP)
        wait_for(lambda: (proc_stat(d.pid) or ["?"])[0] == "T", 5,
                 what="daemon stopped")
        self.count(d)           # what was sent before the stop
        self.assertEqual(self.pings(d, 0.5), [], "pings while stopped")
        d.signal(signal.SIGCONT)
        self.assertGreaterEqual(len(self.pings(d, 1.0)), 3)
        self.assertEqual(d.echo_once("e"), b"ping\n")


# ---------------------------------------------------------------------------
# 9. The unit.


SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
EXPOSURE_MAX = 2.0
# verify's complaints that are about this machine, not the unit: the man
# pages of Documentation= when no man(1) can be run at all.
BENIGN = (re.compile(r"Command 'man .*' failed"),)


def unit_source():
    return os.path.join(ROOT, "systemd", "sockserverd.service.in")


def find_unit(tmp):
    """The unit as `make` generates it: beside the binary ($(B)/systemd,
    or build/systemd), if not older than its .in; else generated now by
    the Makefile's own rule into tmp."""
    src = unit_source()
    for cand in (os.path.join(os.path.dirname(binary()), "systemd"),
                 os.path.join(os.path.dirname(binary()), "build", "systemd"),
                 os.path.join(ROOT, "build", "systemd")):
        u = os.path.join(cand, "sockserverd.service")
        if os.path.exists(u) and \
                os.path.getmtime(u) >= os.path.getmtime(src):
            return u
    b = os.path.join(tmp, "b")
    target = os.path.join(b, "systemd", "sockserverd.service")
    r = subprocess.run(["make", "-s", "-C", ROOT, "B=" + b, target],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    if r.returncode != 0 or not os.path.exists(target):
        raise AssertionError("cannot generate the unit: %s"
                             % r.stdout.decode())
    return target


def man_tree(tmp):
    """A MANPATH holding the built pages, so that verify can check the
    unit's Documentation=; None if they are not built."""
    pages = {}
    for d in (os.path.join(os.path.dirname(binary()), "man"),
              os.path.join(ROOT, "build", "man")):
        for name, sec in (("sockserverd.8", "8"),
                          ("sockserverd.conf.5", "5")):
            p = os.path.join(d, name)
            if name not in pages and os.path.exists(p):
                pages[name] = (p, sec)
    if not pages:
        return None
    top = os.path.join(tmp, "man")
    for name, (p, sec) in pages.items():
        os.makedirs(os.path.join(top, "man" + sec), exist_ok=True)
        shutil.copy(p, os.path.join(top, "man" + sec, name))
    return top


def timespan(text):
    """Seconds in a systemd time span ("30s", "1min 30s", "90")."""
    units = {"": 1, "s": 1, "sec": 1, "second": 1, "seconds": 1,
             "m": 60, "min": 60, "minute": 60, "minutes": 60,
             "h": 3600, "hr": 3600, "hour": 3600, "hours": 3600,
             "ms": 0.001, "msec": 0.001, "us": 1e-6, "usec": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", text)
    if not parts or re.sub(r"[\d.\sa-z]", "", text):
        raise AssertionError("not a time span: %r" % text)
    total = 0.0
    for n, unit in parts:
        if unit not in units:
            raise AssertionError("unknown unit %r in %r" % (unit, text))
        total += float(n) * units[unit]
    return total


@unittest.skipUnless(SYSTEMD_ANALYZE, "no systemd-analyze")
class UnitTests(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ssd-unit-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.unit = find_unit(self.tmp)
        with open(self.unit) as f:
            self.text = f.read()
        # A copy whose commands are the built binary on a valid loopback
        # configuration, so that verify checks the unit, not the install.
        self.conf = os.path.join(self.tmp, "sockserverd.conf")
        with open(self.conf, "w") as f:
            f.write(conf(listener_conf("e", address=os.path.join(
                self.tmp, "e.sock"))))
        self.copy = os.path.join(self.tmp, "sockserverd.service")
        with open(self.copy, "w") as f:
            f.write(self.localised(self.text))

    def localised(self, text):
        out = []
        for ln in text.splitlines():
            if re.match(r"\s*Exec[A-Za-z]*=", ln):
                ln = re.sub(r"(?<=[=\s@\-+!:])/\S*/sockserverd(?=\s|$)",
                            binary(), ln)
                ln = re.sub(r"(\s-c\s+)\S+", lambda m: m.group(1) +
                            self.conf, ln)
            out.append(ln)
        return "\n".join(out) + "\n"

    def directives(self):
        """{key: [values]} of the [Service] section."""
        out, section = {}, None
        for ln in self.text.splitlines():
            ln = ln.strip()
            if not ln or ln.startswith(("#", ";")):
                continue
            if ln.startswith("["):
                section = ln
                continue
            if section == "[Service]" and "=" in ln:
                k, _, v = ln.partition("=")
                out.setdefault(k.strip(), []).append(v.strip())
        return out

    def test_verify(self):
        env = dict(os.environ)
        man = man_tree(self.tmp)
        if man is not None:
            env["MANPATH"] = man
        r = subprocess.run([SYSTEMD_ANALYZE, "verify", self.copy],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, env=env, timeout=60)
        out = r.stdout.decode("utf-8", "replace")
        bad = [ln for ln in out.splitlines() if ln.strip() and
               not any(b.search(ln) for b in BENIGN)]
        self.assertEqual(bad, [], "systemd-analyze verify %s (from %s):\n%s"
                         % (self.copy, self.unit, out))
        if r.returncode != 0:
            self.assertTrue(out.strip(), "verify failed without a word")

    def test_security_exposure(self):
        r = subprocess.run([SYSTEMD_ANALYZE, "security", "--offline=true",
                            "--no-pager", self.copy],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60)
        out = r.stdout.decode("utf-8", "replace")
        m = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)",
                      out)
        self.assertIsNotNone(m, "no overall exposure in:\n%s" % out)
        exposure = float(m.group(1))
        worst = []
        for ln in out.splitlines():
            # "<mark> Setting=  description  0.2" (the mark is a glyph
            # or ASCII, by locale); settings that are fine have no figure.
            mm = re.match(r"\s*\S+\s+(\S+=\S*)\s+(.*?)\s+(\d+\.\d+)\s*$",
                          ln)
            if mm:
                worst.append((float(mm.group(3)), mm.group(1),
                              mm.group(2)))
        worst.sort(key=lambda w: -w[0])
        self.assertLessEqual(
            exposure, EXPOSURE_MAX,
            "exposure %.1f > %.1f for %s; the largest contributions:\n%s"
            % (exposure, EXPOSURE_MAX, self.unit,
               "\n".join("  %.1f  %-50s %s" % w for w in worst[:15])))

    def test_service_directives(self):
        d = self.directives()
        self.assertEqual(d.get("Type"), ["notify"])
        self.assertEqual(d.get("Restart"), ["on-failure"])
        self.assertTrue(d.get("LimitNOFILE"))
        # Issue 9: the daemon checks the file itself at start and exits 1;
        # a failing ExecStartPre= would be restarted whatever
        # RestartPreventExitStatus= says (systemd 252).
        self.assertNotIn("ExecStartPre", d)
        start = d.get("ExecStart", [])
        self.assertEqual(len(start), 1, start)
        argv = shlex.split(start[0].lstrip("@-:+!"))
        self.assertTrue(argv[0].endswith("/sockserverd"), argv)
        self.assertNotIn("-D", argv, "ExecStart must stay in the "
                         "foreground")
        self.assertNotRegex(self.text, r"@[A-Z]+@", "unsubstituted path")

    def test_reload_checks_the_file_then_signals(self):
        # Issue 9: "systemctl reload" runs -t on the file ExecStart reads,
        # then sends SIGHUP; a bad file stops it at the first command.
        d = self.directives()
        reload = [re.sub(r"\s+", " ", v) for v in d.get("ExecReload", [])]
        self.assertEqual(len(reload), 2, reload)
        self.assertEqual(reload[1], "/bin/kill -HUP $MAINPID")
        check = shlex.split(reload[0])
        start = shlex.split(d["ExecStart"][0].lstrip("@-:+!"))
        self.assertFalse(reload[0].startswith(("-", "@", "+", "!", ":")),
                         "a prefix would change how the check runs or "
                         "let its failure pass: %s" % reload[0])
        self.assertEqual(check[0], start[0])
        self.assertIn("-t", check)
        self.assertEqual(check[check.index("-c") + 1],
                         start[start.index("-c") + 1],
                         "the check must read the file the daemon reads")

    def test_stop_lets_requests_finish(self):
        # Issue 9, defect 12: the default KillMode=control-group sends
        # SIGTERM to fork children and exec programs too, cutting their
        # requests; mixed sends it to the daemon alone, which drains.
        d = self.directives()
        self.assertEqual(d.get("KillMode"), ["mixed"])
        stop = d.get("TimeoutStopSec", [])
        self.assertEqual(len(stop), 1, stop)
        # The default shutdown_timeout (10 s) and the 2 s that the daemon
        # gives cut requests must fit, with room for the exit.
        self.assertGreaterEqual(timespan(stop[0]), 10 + 2 + 3, stop[0])

    def test_exit_status_1_is_not_restarted(self):
        # Issue 9: a configuration or start-up error is not retried.
        d = self.directives()
        prevent = " ".join(d.get("RestartPreventExitStatus", [])).split()
        self.assertIn("1", prevent)

    def test_unit_checks_pass_quietly(self):
        # The unit's own -t command line (ExecReload=), on the built
        # binary: exit 0, one line, nothing on stderr.
        with open(self.copy) as f:
            cmds = [ln.partition("=")[2] for ln in f.read().splitlines()
                    if re.match(r"Exec[A-Za-z]*=.*\s-t(\s|$)", ln)]
        self.assertTrue(cmds)
        for cmd in cmds:
            argv = shlex.split(cmd.lstrip("@-:+!"))
            self.assertEqual(argv[0], binary())
            r = run_binary(argv[1:])
            self.assertEqual(r.returncode, 0, r.stderr.decode())
            self.assertEqual(r.stdout, b"configuration OK\n")
            self.assertEqual(r.stderr, b"")


if __name__ == "__main__":
    unittest.main()
