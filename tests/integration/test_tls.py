# SPDX-License-Identifier: ISC
"""TLS on stream listeners (the listener key tls): handlers and exec
programs see plaintext under every model; TLS 1.2 and 1.3, ECDSA and RSA
certificates, SNI, ALPN, client certificates, resumption with a ticket;
certificates read again on SIGHUP; hostile clients refused and counted as
tls_handshake.  Interop with Python's ssl module and `openssl s_client`;
every certificate is generated here with the openssl command."""

import os
import re
import select
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import tempfile
import threading
import time
import unittest

from ssdtest import (MODELS, DaemonTestCase, Deadline, conf, fixture_plugin,
                     listener_conf, model_conf, plugin_dir, recv_until_eof,
                     run_binary, send_all, skip_under_valgrind, wait_for)

CERTS = None        # the directory of the generated certificates
HAVE_OPENSSL = shutil.which("openssl") is not None


def _openssl(*args, **kw):
    subprocess.run(["openssl"] + list(args), check=True, cwd=CERTS,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                   timeout=60, **kw)


def _ec_key(name):
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-out", name + ".key")


def _rsa_key(name):
    _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt",
             "rsa_keygen_bits:2048", "-out", name + ".key")


def _ca(name, cn):
    _ec_key(name)
    _openssl("req", "-x509", "-new", "-key", name + ".key", "-out",
             name + ".pem", "-days", "2", "-subj", "/CN=" + cn,
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")


def _cert(name, cn, ca="ca", sans=None, rsa=False, client=False):
    (_rsa_key if rsa else _ec_key)(name)
    _openssl("req", "-new", "-key", name + ".key", "-out", name + ".csr",
             "-subj", "/O=sockserverd tests/CN=" + cn)
    ext = os.path.join(CERTS, name + ".ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\n")
        if client:
            f.write("extendedKeyUsage=clientAuth\n")
        else:
            f.write("extendedKeyUsage=serverAuth\n")
            f.write("subjectAltName=%s\n" % ",".join(
                "DNS:" + s for s in (sans or [cn])))
    _openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem",
             "-CAkey", ca + ".key", "-CAcreateserial", "-out",
             name + ".pem", "-days", "2", "-extfile", ext)


def setUpModule():
    global CERTS
    if not HAVE_OPENSSL:
        return
    CERTS = tempfile.mkdtemp(prefix="ssd-tls-")
    _ca("ca", "sockserverd test CA")
    _cert("ec", "localhost", sans=["localhost"])
    _cert("rsa", "localhost", sans=["localhost"], rsa=True)
    _cert("other", "other.example")
    _cert("wild", "*.wild.example")
    _cert("renewed", "localhost")
    _ca("clientca", "sockserverd client CA")
    _cert("client", "alice", ca="clientca", client=True)
    _ca("rogueca", "rogue CA")
    _cert("rogue", "mallory", ca="rogueca", client=True)
    with open(os.path.join(CERTS, "garbage.pem"), "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nnot base64 at all\n"
                "-----END CERTIFICATE-----\n")
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-aes256", "-pass", "pass:secret",
             "-out", "encrypted.key")


def tearDownModule():
    if CERTS is not None:
        shutil.rmtree(CERTS, ignore_errors=True)


def cert(name):
    return os.path.join(CERTS, name)


def tls_group(name="ec", extra=""):
    return 'tls = { certificate = "%s"; key = "%s"; %s };' % (
        cert(name + ".pem"), cert(name + ".key"), extra)


def client_ctx(version=None, alpn=None, client=None, verify=True):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        ctx.load_verify_locations(cert("ca.pem"))
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    if alpn is not None:
        ctx.set_alpn_protocols(alpn)
    if client is not None:
        ctx.load_cert_chain(cert(client + ".pem"), cert(client + ".key"))
    return ctx


def tls_connect(d, name, ctx=None, server_hostname="localhost",
                timeout=5.0, session=None):
    """A TLS client of listener name, the handshake done.  Ragged EOFs
    raise: every clean end must come with the server's close_notify."""
    raw = d.connect(name, timeout)
    s = (ctx or client_ctx()).wrap_socket(
        raw, server_hostname=server_hostname, suppress_ragged_eofs=False,
        session=session)
    return s


def tls_recv_exactly(s, n, timeout=5.0):
    dl = Deadline(timeout)
    out = b""
    while len(out) < n:
        s.settimeout(max(dl.remaining(), 0.01))
        b = s.recv(n - len(out))
        if not b:
            raise AssertionError("EOF after %d of %d bytes" % (len(out), n))
        out += b
    return out


def tls_recv_until_eof(s, timeout=5.0):
    """Everything until the server's close_notify."""
    dl = Deadline(timeout)
    out = b""
    while True:
        s.settimeout(max(dl.remaining(), 0.01))
        b = s.recv(65536)
        if not b:
            return out
        out += b


def subject_cn(s):
    for rdn in s.getpeercert()["subject"]:
        for k, v in rdn:
            if k == "commonName":
                return v
    return None


def refused_tls(d):
    """sockserverd_refused_total{reason="tls_handshake"} summed."""
    s = d.connect("st")
    send_all(s, b"GET /metrics HTTP/1.0\r\n\r\n")
    s.shutdown(socket.SHUT_WR)
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    total = 0
    for m in re.finditer(rb'sockserverd_refused_total\{listener="[^"]*",'
                         rb'reason="tls_handshake"\} (\d+)', data):
        total += int(m.group(1))
    return total


STATUS = listener_conf("st", handler="status", concurrency="event",
                       extra="timeout = 5;")


@unittest.skipUnless(HAVE_OPENSSL, "the openssl command is missing")
class TlsEchoTests(DaemonTestCase):
    """Plaintext for the handler under every model; close_notify when
    the handler is done; 1.2 and 1.3; ECDSA and RSA."""

    def check_echo(self, d, name, ctx=None, payload=b"hello over TLS\n"):
        s = tls_connect(d, name, ctx)
        s.sendall(payload)
        self.assertEqual(tls_recv_exactly(s, len(payload)), payload)
        # Our close_notify ends the handler; its own must come back
        # (unwrap raises without it).
        version = s.version()
        s.settimeout(5)
        raw = s.unwrap()
        raw.close()
        return version

    def test_every_model(self):
        confs = [model_conf("m-" + m, m, extra=tls_group() + " timeout = 5;")
                 for m in MODELS]
        d = self.daemon(conf(*confs))
        for m in MODELS:
            with self.subTest(model=m):
                self.check_echo(d, "m-" + m)
                # a large payload both ways at once (records at the
                # size limit, partial writes)
                s = tls_connect(d, "m-" + m)
                data = os.urandom(3 << 20)
                self.assertEqual(tls_pump(s, data, 30), data)
                s.close()

    def test_versions_and_key_types(self):
        d = self.daemon(conf(
            listener_conf("ec", concurrency="event", extra=tls_group("ec")),
            listener_conf("rsa", concurrency="thread",
                          extra=tls_group("rsa"))))
        for name in ("ec", "rsa"):
            for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
                with self.subTest(name=name, version=v):
                    self.assertEqual(self.check_echo(d, name, client_ctx(v)),
                                     "TLSv1.2"
                                     if v == ssl.TLSVersion.TLSv1_2
                                     else "TLSv1.3")

    def test_min_version_refuses_older_clients(self):
        d = self.daemon(conf(
            listener_conf("v13", concurrency="event",
                          extra=tls_group(extra='min_version = "1.3";')),
            STATUS))
        with self.assertRaises((ssl.SSLError, ConnectionError)):
            tls_connect(d, "v13", client_ctx(ssl.TLSVersion.TLSv1_2))
        self.check_echo(d, "v13", client_ctx(ssl.TLSVersion.TLSv1_3))
        wait_for(lambda: refused_tls(d) == 1, what="one refusal counted")

    def test_openssl_s_client(self):
        # s_client ends at its stdin's EOF without waiting for a reply:
        # the program answers one line and exits, which closes.
        tmp = self.daemon_dir()
        prog = os.path.join(tmp, "line.sh")
        with open(prog, "w") as f:
            f.write("#!/bin/sh\nread line; echo \"$line\"\n")
        os.chmod(prog, stat.S_IRWXU)
        d = self.daemon(conf(listener_conf(
            "e", handler="exec", concurrency="event",
            extra='options = { program = "%s"; }; %s' % (prog,
                                                         tls_group()))))
        port = d.listener("e").port
        for v in ("-tls1_2", "-tls1_3"):
            with self.subTest(version=v):
                r = subprocess.run(
                    ["openssl", "s_client", v, "-connect",
                     "127.0.0.1:%d" % port, "-servername", "localhost",
                     "-CAfile", cert("ca.pem"), "-verify_return_error",
                     "-quiet"],
                    input=b"ping from s_client\n", stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, timeout=20)
                self.assertIn(b"ping from s_client\n", r.stdout, r.stderr)

    def test_the_handshake_comes_after_a_proxy_header(self):
        script = os.path.join(self.daemon_dir(), "peer.sh")
        with open(script, "w") as f:
            f.write("#!/bin/sh\necho \"$TCPREMOTEIP $HTTPS\"\n")
        os.chmod(script, stat.S_IRWXU)
        d = self.daemon(conf(listener_conf(
            "px", handler="exec", concurrency="thread",
            extra='proxy_protocol = true; options = { program = "%s"; }; %s'
            % (script, tls_group()))))
        raw = d.connect("px")
        raw.sendall(b"PROXY TCP4 192.0.2.7 127.0.0.1 5555 80\r\n")
        s = client_ctx().wrap_socket(raw, server_hostname="localhost",
                                     suppress_ragged_eofs=False)
        self.assertEqual(tls_recv_until_eof(s), b"192.0.2.7 on\n")

    def daemon_dir(self):
        d = tempfile.mkdtemp(prefix="ssd-tls-t-")
        self.addCleanup(shutil.rmtree, d, True)
        return d


@unittest.skipUnless(HAVE_OPENSSL, "the openssl command is missing")
class TlsFeatureTests(DaemonTestCase):
    """SNI, ALPN, client certificates, resumption."""

    def test_sni_picks_the_certificate(self):
        sni = ('sni = ( { server_name = "other.example"; certificate = "%s";'
               ' key = "%s"; }, { server_name = "*.wild.example"; '
               'certificate = "%s"; key = "%s"; } );' % (
                   cert("other.pem"), cert("other.key"), cert("wild.pem"),
                   cert("wild.key")))
        d = self.daemon(conf(listener_conf(
            "sni", concurrency="event", extra=tls_group(extra=sni))))
        ctx = client_ctx()
        ctx.check_hostname = False
        for name, cn in (("localhost", "localhost"),
                         ("other.example", "other.example"),
                         ("OTHER.example", "other.example"),
                         ("a.wild.example", "*.wild.example"),
                         ("a.b.wild.example", "localhost"),
                         ("wild.example", "localhost"),
                         (None, "localhost")):
            with self.subTest(sni=name):
                s = tls_connect(d, "sni", ctx, server_hostname=name)
                self.assertEqual(subject_cn(s), cn)
                s.close()

    def test_alpn_in_the_servers_order(self):
        d = self.daemon(conf(
            listener_conf("alpn", concurrency="event", extra=tls_group(
                extra='alpn = [ "h2", "http/1.1" ];')), STATUS))
        s = tls_connect(d, "alpn", client_ctx(alpn=["http/1.1", "h2"]))
        self.assertEqual(s.selected_alpn_protocol(), "h2")
        s.close()
        s = tls_connect(d, "alpn", client_ctx(alpn=["http/1.1"]))
        self.assertEqual(s.selected_alpn_protocol(), "http/1.1")
        s.close()
        s = tls_connect(d, "alpn", client_ctx())   # no ALPN: served
        self.assertIsNone(s.selected_alpn_protocol())
        s.close()
        with self.assertRaises((ssl.SSLError, ConnectionError)):
            tls_connect(d, "alpn", client_ctx(alpn=["spdy/1"]))
        wait_for(lambda: refused_tls(d) == 1, what="one refusal counted")

    def exec_conf(self, name, verify):
        script = os.path.join(self.tmp(), "env.sh")
        with open(script, "w") as f:
            f.write("#!/bin/sh\nenv | grep -E '^(HTTPS|SSL_|PROTO)' | "
                    "sort\n")
        os.chmod(script, stat.S_IRWXU)
        return listener_conf(name, handler="exec", concurrency="event",
                             extra='options = { program = "%s"; }; %s' % (
                                 script, tls_group(extra=(
                                     'client_ca = "%s"; verify_client = '
                                     '"%s";' % (cert("clientca.pem"),
                                                verify)))))

    def tmp(self):
        d = tempfile.mkdtemp(prefix="ssd-tls-t-")
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def env_of(self, s):
        return dict(line.split("=", 1) for line in
                    tls_recv_until_eof(s).decode().splitlines())

    def test_client_certificates(self):
        d = self.daemon(conf(self.exec_conf("req", "require"),
                             self.exec_conf("opt", "optional"), STATUS))
        env = self.env_of(tls_connect(d, "req", client_ctx(client="client")))
        self.assertEqual(env["SSL_CLIENT_VERIFY"], "SUCCESS")
        self.assertEqual(env["SSL_CLIENT_S_DN"],
                         "CN=alice,O=sockserverd tests")
        self.assertEqual(env["SSL_CLIENT_I_DN"], "CN=sockserverd client CA")
        self.assertEqual(env["HTTPS"], "on")
        self.assertEqual(env["PROTO"], "TCP")
        env = self.env_of(tls_connect(d, "opt"))
        self.assertEqual(env["SSL_CLIENT_VERIFY"], "NONE")
        self.assertNotIn("SSL_CLIENT_S_DN", env)
        refused = 0
        for who in (None, "rogue"):
            with self.subTest(client=who):
                # TLS 1.3 reports a refused client certificate only at
                # the first read.
                try:
                    s = tls_connect(d, "req", client_ctx(client=who))
                    s.settimeout(5)
                    self.assertEqual(s.recv(100), b"")
                except (ssl.SSLError, ConnectionError):
                    pass
                refused += 1
                wait_for(lambda: refused_tls(d) == refused,
                         what="%d refusals counted" % refused)

    def test_environment_names_the_session(self):
        d = self.daemon(conf(self.exec_conf("e", "none")))
        s = tls_connect(d, "e", client_ctx(ssl.TLSVersion.TLSv1_2),
                        server_hostname="localhost")
        env = self.env_of(s)
        self.assertEqual(env["SSL_PROTOCOL"], "TLSv1.2")
        self.assertEqual(env["SSL_CIPHER"], s.cipher()[0])
        self.assertEqual(env["SSL_TLS_SNI"], "localhost")
        s = tls_connect(d, "e", client_ctx(verify=False),
                        server_hostname=None)
        env = self.env_of(s)
        self.assertEqual(env["SSL_PROTOCOL"], "TLSv1.3")
        self.assertNotIn("SSL_TLS_SNI", env)

    def test_environment_keeps_the_operators_ssl_variables(self):
        # The daemon's own SSL_PROTOCOL (say) never reaches a program,
        # but OpenSSL's SSL_CERT_FILE and SSL_CERT_DIR, set for the
        # daemon (Environment= in a unit), do: programs need them.
        script = os.path.join(self.tmp(), "env.sh")
        with open(script, "w") as f:
            f.write("#!/bin/sh\nenv | grep -E '^(HTTPS|SSL_)' | sort\n")
        os.chmod(script, stat.S_IRWXU)
        d = self.daemon(conf(
            listener_conf("t", handler="exec", concurrency="event",
                          extra='options = { program = "%s"; }; %s' % (
                              script, tls_group())),
            listener_conf("p", handler="exec", concurrency="event",
                          extra='options = { program = "%s"; };' % script)),
            env={"SSL_CERT_FILE": "/etc/ssl/x.pem", "SSL_CERT_DIR": "/d",
                 "SSL_PROTOCOL": "forged", "HTTPS": "forged"})
        for name in ("t", "p"):
            with self.subTest(listener=name):
                if name == "t":
                    out = tls_recv_until_eof(tls_connect(d, name))
                else:
                    s = d.connect(name)
                    out = b""
                    while True:
                        b = s.recv(65536)
                        if not b:
                            break
                        out += b
                    s.close()
                env = dict(line.split("=", 1) for line in
                           out.decode().splitlines())
                self.assertEqual(env.get("SSL_CERT_FILE"), "/etc/ssl/x.pem")
                self.assertEqual(env.get("SSL_CERT_DIR"), "/d")
                self.assertNotEqual(env.get("SSL_PROTOCOL"), "forged")
                self.assertNotEqual(env.get("HTTPS"), "forged")

    def test_resumption_with_a_ticket(self):
        d = self.daemon(conf(
            listener_conf("t", concurrency="event", extra=tls_group()),
            listener_conf("f", concurrency="fork", extra=tls_group()),
            listener_conf("off", concurrency="event", extra=tls_group(
                extra="session_tickets = false;"))))
        for name, resumes in (("t", True), ("f", True), ("off", False)):
            for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
                with self.subTest(listener=name, version=v):
                    ctx = client_ctx(v)
                    s = tls_connect(d, name, ctx)
                    s.sendall(b"x")
                    tls_recv_exactly(s, 1)   # TLS 1.3: the ticket came
                    session = s.session
                    s.close()
                    s = tls_connect(d, name, ctx, session=session)
                    s.sendall(b"y")
                    tls_recv_exactly(s, 1)
                    self.assertEqual(s.session_reused, resumes)
                    s.close()

    def test_openssl_s_client_resumes(self):
        # The program answers a line and exits, which closes; s_client
        # reads until then (-ign_eof), so the TLS 1.3 ticket, sent after
        # the handshake, reaches it before it saves the session.
        tmp = self.tmp()
        prog = os.path.join(tmp, "line.sh")
        with open(prog, "w") as f:
            f.write("#!/bin/sh\nread line; echo \"$line\"\n")
        os.chmod(prog, stat.S_IRWXU)
        d = self.daemon(conf(listener_conf(
            "e", handler="exec", concurrency="event",
            extra='options = { program = "%s"; }; %s' % (prog,
                                                         tls_group()))))
        sess = os.path.join(tmp, "sess.pem")
        port = d.listener("e").port
        base = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                "-servername", "localhost", "-CAfile", cert("ca.pem"),
                "-ign_eof"]
        r = subprocess.run(base + ["-sess_out", sess], input=b"a\n",
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=20)
        self.assertIn(b"New, TLSv1.3", r.stdout, r.stderr)
        r = subprocess.run(base + ["-sess_in", sess], input=b"b\n",
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=20)
        self.assertIn(b"Reused, TLSv1.3", r.stdout, r.stderr)
        self.assertIn(b"\nb\n", r.stdout)


@unittest.skipUnless(HAVE_OPENSSL, "the openssl command is missing")
class TlsExecTests(DaemonTestCase):
    """exec under TLS: the daemon relays plaintext both ways, with
    half-closes carried across and the program's exit ending it."""

    def script(self, body):
        d = tempfile.mkdtemp(prefix="ssd-tls-x-")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "prog.sh")
        with open(path, "w") as f:
            f.write("#!/bin/sh\n" + body)
        os.chmod(path, stat.S_IRWXU)
        return path

    def exec_listener(self, name, model, program, extra=""):
        return model_conf(name, model, handler="exec", extra=(
            'options = { program = "%s"; }; %s %s' % (
                program, tls_group(), extra)))

    def test_relay_carries_input_eof_and_output(self):
        # TLS 1.3 allows one side to close (close_notify) and go on
        # reading: the program sees its stdin end, answers, exits.
        prog = self.script('n=$(wc -c); echo "got $n"\n')
        d = self.daemon(conf(*[self.exec_listener("x-" + m, m, prog)
                               for m in MODELS]))
        for m in MODELS:
            with self.subTest(model=m):
                out = half_close(tls_connect(d, "x-" + m), b"z" * 100000)
                self.assertIn(b"got 100000", out)

    def test_large_stream_through_cat_with_backpressure(self):
        prog = self.script("exec cat\n")
        d = self.daemon(conf(self.exec_listener("cat", "event", prog)))
        s = tls_connect(d, "cat", timeout=30)
        data = os.urandom(8 << 20)
        # One thread: an SSL object must not be read and written from
        # two threads at once (a sender thread made this test flaky).
        got = tls_pump(s, data, 60)
        self.assertEqual(got, data)

    def test_program_exit_ends_the_relay(self):
        prog = self.script('echo bye\n')
        d = self.daemon(conf(self.exec_listener("bye", "thread", prog)))
        s = tls_connect(d, "bye")
        # The client never sends EOF: the program's end is enough, and
        # the client gets close_notify (a ragged EOF would raise).
        self.assertEqual(tls_recv_until_eof(s), b"bye\n")

    def test_program_closing_its_stdin_early_under_every_model(self):
        # The relay's write to the program's stdin fails with EPIPE; in
        # a fork model child (SIGPIPE's default action) it must not
        # raise SIGPIPE and kill the handler process: the client still
        # gets the program's output and close_notify.
        prog = self.script('head -c 10 >/dev/null; exec 0<&-; '
                           'sleep 0.3; echo done\n')
        models = [m for m in MODELS if m != "sync"]
        d = self.daemon(conf(*[self.exec_listener("x-" + m, m, prog,
                                                  "timeout = 5;")
                               for m in models]))
        for m in models:
            with self.subTest(model=m):
                s = tls_connect(d, "x-" + m)
                s.sendall(b"y" * 200000)
                self.assertEqual(tls_recv_until_eof(s, 10), b"done\n")
                s.close()
        self.assertNotRegex(d.log(), r"killed by signal")

    def test_relay_without_pidfd(self):
        # pidfd_open failing (old kernels, seccomp): the relay polls
        # waitpid; programs run to completion, the loop is not blocked,
        # silence still ends at the timeout.
        from test_exec import NO_PIDFD
        import sys
        prog = self.script('n=$(wc -c); sleep 0.3; echo "got $n"; exit 3\n')
        slow = self.script('exec sleep 30\n')
        d = self.daemon(conf(self.exec_listener("ev", "event", prog),
                             self.exec_listener("th", "thread", prog),
                             self.exec_listener("slow", "event", slow,
                                                "timeout = 0.5;"),
                             listener_conf("e", concurrency="event")),
                        start=False)
        cmd = d.command
        d.command = lambda: [sys.executable, "-I", "-S", "-c",
                             NO_PIDFD] + cmd()
        d.start()
        for name in ("ev", "th"):
            with self.subTest(listener=name):
                s = tls_connect(d, name)
                s.sendall(b"q" * 5000)
                self.assertEqual(d.echo_once("e", b"here"), b"here")
                self.assertEqual(half_close(s, b""), b"got 5000\n")
        d.wait_log(r"prog.sh exited with status 3")
        t0 = time.monotonic()
        self.assertEqual(tls_recv_until_eof(tls_connect(d, "slow"), 15), b"")
        self.assertLess(time.monotonic() - t0, 5)
        d.wait_log(r"sleep.*silent for the timeout|silent for the timeout")

    def test_silent_program_is_ended_at_the_timeout(self):
        prog = self.script('exec sleep 30\n')
        d = self.daemon(conf(self.exec_listener("slow", "event", prog,
                                                "timeout = 1;")))
        s = tls_connect(d, "slow")
        t0 = time.monotonic()
        self.assertEqual(tls_recv_until_eof(s, 15), b"")
        self.assertLess(time.monotonic() - t0, 10)
        d.wait_log(r"silent for the timeout: sending SIGTERM")


def tls_pump(s, data, timeout=60):
    """Sends data and reads as much back, from one thread, without
    blocking: the client never stops reading while it writes."""
    s.setblocking(False)
    sent, got = 0, bytearray()
    dl = Deadline(timeout)
    while len(got) < len(data):
        if dl.expired():
            raise AssertionError("%d of %d bytes back" % (len(got),
                                                          len(data)))
        moved = False
        if sent < len(data):
            try:
                sent += s.send(data[sent:sent + 65536])
                moved = True
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                pass
        try:
            b = s.recv(65536)
            if not b:
                raise AssertionError("EOF after %d bytes" % len(got))
            got += b
            moved = True
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
        if not moved:
            select.select([s], [s] if sent < len(data) else [], [],
                          min(0.5, max(dl.remaining(), 0.01)))
    return bytes(got)


def half_close(s, payload, timeout=30):
    """Sends payload, then close_notify, and reads on (TLS 1.3 lets one
    side close and go on reading) until the server's close_notify."""
    s.sendall(payload)
    s.setblocking(False)
    try:
        s.unwrap()      # sends close_notify; the server's is not here yet
    except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
        pass
    dl = Deadline(timeout)
    out = b""
    while not dl.expired():
        try:
            b = s.recv(65536)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            select.select([s], [], [], dl.remaining())
            continue
        except ssl.SSLZeroReturnError:
            return out
        if not b:
            return out
        out += b
    raise AssertionError("no close_notify after %r" % out)


@unittest.skipUnless(HAVE_OPENSSL, "the openssl command is missing")
class TlsReloadTests(DaemonTestCase):

    def test_sighup_reads_renewed_certificates(self):
        tmp = tempfile.mkdtemp(prefix="ssd-tls-r-")
        self.addCleanup(shutil.rmtree, tmp, True)
        crt, key = os.path.join(tmp, "c.pem"), os.path.join(tmp, "c.key")
        shutil.copy(cert("ec.pem"), crt)
        shutil.copy(cert("ec.key"), key)
        group = 'tls = { certificate = "%s"; key = "%s"; };' % (crt, key)
        c = conf(listener_conf("e", concurrency="event", extra=group))
        d = self.daemon(c)
        old = tls_connect(d, "e")
        old.sendall(b"1")
        tls_recv_exactly(old, 1)
        first = old.getpeercert(binary_form=True)
        # certbot-style renewal: new files, then a reload
        shutil.copy(cert("renewed.pem"), crt)
        shutil.copy(cert("renewed.key"), key)
        d.reload(c)
        s = tls_connect(d, "e")
        self.assertNotEqual(s.getpeercert(binary_form=True), first)
        self.assertEqual(s.getpeercert(binary_form=True),
                         ssl.PEM_cert_to_DER_cert(open(crt).read()))
        s.close()
        # the open connection keeps its session
        old.sendall(b"2")
        self.assertEqual(tls_recv_exactly(old, 1), b"2")
        # a bad file keeps the configuration that runs
        with open(key, "w") as f:
            f.write("garbage\n")
        d.signal(signal.SIGHUP)
        d.wait_log(r"key %s: " % re.escape(key))
        s = tls_connect(d, "e")
        self.assertEqual(s.getpeercert(binary_form=True),
                         ssl.PEM_cert_to_DER_cert(open(crt).read()))
        s.sendall(b"3")
        self.assertEqual(tls_recv_exactly(s, 1), b"3")


    @unittest.skipUnless(os.geteuid() == 0, "needs root to drop to nobody")
    def test_root_only_key_read_at_start_not_by_a_reload_as_the_user(self):
        # As documented (sockserverd.conf(5), RELOADING AND PRIVILEGES):
        # with user/group the key is read at start, as root; a reload
        # runs as the user and cannot read a root-only key, so it fails
        # with the file named and the running certificate keeps serving
        # (under systemd: LoadCredential=, or files the user may read).
        tmp = tempfile.mkdtemp(prefix="ssd-tls-r-")
        self.addCleanup(shutil.rmtree, tmp, True)
        os.chmod(tmp, 0o755)
        crt, key = os.path.join(tmp, "c.pem"), os.path.join(tmp, "c.key")
        shutil.copy(cert("ec.pem"), crt)
        shutil.copy(cert("ec.key"), key)
        os.chmod(crt, 0o644)
        os.chmod(key, 0o600)
        first = ssl.PEM_cert_to_DER_cert(open(crt).read())
        group = 'tls = { certificate = "%s"; key = "%s"; };' % (crt, key)
        c = conf(listener_conf("e", concurrency="event", extra=group),
                 globals_='user = "nobody";\ngroup = "nogroup";')
        d = self.daemon(c, start=False)
        # READY=1 comes after the drop: nobody must reach the notify
        # socket (as in test_systemd).
        os.chmod(d.dir, 0o711)
        os.chmod(d.notify_path, 0o666)
        d.start()
        s = tls_connect(d, "e")     # read at start, as root
        self.assertEqual(s.getpeercert(binary_form=True), first)
        s.close()
        shutil.copy(cert("renewed.pem"), crt)
        shutil.copy(cert("renewed.key"), key)
        os.chmod(key, 0o600)
        d.signal(signal.SIGHUP)
        d.wait_log(r"key %s: Permission denied" % re.escape(key))
        s = tls_connect(d, "e")
        self.assertEqual(s.getpeercert(binary_form=True), first)
        s.close()


@unittest.skipUnless(HAVE_OPENSSL, "the openssl command is missing")
# GCC 12's AddressSanitizer has no fork handler for its allocator: a fork
# child can inherit a size class's lock held by a thread that was
# allocating, and hang at its first malloc (seen: about one run in six,
# a child's tls_accept stuck in SizeClassAllocator64::GetFromAllocator;
# ASAN_OPTIONS has nothing against it).  The hang this test looks for
# cannot be told from that one; the plain and TSan builds run it.
@unittest.skipIf("/san-address" in os.environ.get("SSD_BIN", ""),
                 "under AddressSanitizer a fork child can hang in ASan's "
                 "own allocator lock")
# Under valgrind each fork child exits 99: memcheck counts as lost what
# the threads and coroutines it did not inherit owned (their OpenSSL
# error state and DRBGs, a request in flight), and the daemon logs the
# status as the child's failure.
@skip_under_valgrind("a fork child's leak check counts what other "
                     "threads owned")
class TlsForkBesideThreadsTests(DaemonTestCase):
    """fork while other threads are inside OpenSSL: a child that inherits
    one of its locks held would hang in its handshake (seen under ASan:
    a fork listener beside a thread listener, both TLS)."""

    def test_fork_children_handshake_while_threads_do(self):
        d = self.daemon(conf(
            listener_conf("th", concurrency="thread",
                          extra=tls_group() + " timeout = 20;"),
            listener_conf("ew", concurrency="event", extra="workers = 2; "
                          + tls_group() + " timeout = 20;"),
            listener_conf("fk", concurrency="fork",
                          extra=tls_group() + " timeout = 20;")))
        stop = threading.Event()
        errors = []

        def hammer(name):
            ctx = client_ctx()
            while not stop.is_set():
                try:
                    s = tls_connect(d, name, ctx, timeout=20)
                    s.close()
                except Exception as e:     # reported below
                    errors.append(e)
                    return

        threads = [threading.Thread(target=hammer, args=(n,))
                   for n in ("th", "th", "ew", "ew")]
        for t in threads:
            t.start()
        try:
            dl = Deadline(60)
            forks = 0
            while forks < 120 and not dl.expired():
                s = tls_connect(d, "fk", timeout=10)
                s.sendall(b"f")
                self.assertEqual(tls_recv_exactly(s, 1, 10), b"f")
                s.close()
                forks += 1
            self.assertEqual(forks, 120)
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        self.assertEqual(errors, [])


@unittest.skipUnless(HAVE_OPENSSL, "the openssl command is missing")
class SsdEnvTests(DaemonTestCase):
    """ssd_env() for every kind of listener, as a plugin sees it."""

    def test_values_for_every_listener(self):
        env = fixture_plugin("env")
        if env is None:
            self.skipTest("SSD_TEST_PLUGINS unset (make integration sets "
                          "it)")
        tmp = tempfile.mkdtemp(prefix="ssd-env-")
        self.addCleanup(shutil.rmtree, tmp, True)
        d = self.daemon(conf(
            listener_conf("tcp", handler=env, concurrency="thread"),
            listener_conf("udp", handler=env, type="dgram"),
            listener_conf("tls", handler=env, concurrency="event",
                          extra=tls_group()),
            listener_conf("unix", handler=env,
                          address=os.path.join(tmp, "s"))))

        def parse(text):
            return dict(l.split("=", 1) for l in text.decode().splitlines())

        s = d.connect("tcp")
        me = s.getsockname()
        send_all(s, b"go\n")
        got = parse(recv_until_eof(s))
        self.assertEqual(got, {
            "PROTO": "TCP", "TCPREMOTEIP": "127.0.0.1",
            "TCPREMOTEPORT": str(me[1]), "TCPLOCALIP": "127.0.0.1",
            "TCPLOCALPORT": str(d.listener("tcp").port)})
        u = d.dgram("udp")
        u.send(b"x")
        got = parse(u.recv(4096))
        self.assertEqual(got["PROTO"], "UDP")
        self.assertEqual(got["TCPREMOTEPORT"], str(u.getsockname()[1]))
        self.assertNotIn("HTTPS", got)
        s = tls_connect(d, "tls", server_hostname="localhost")
        s.sendall(b"go\n")
        got = parse(tls_recv_until_eof(s))
        self.assertEqual(got["PROTO"], "TCP")
        self.assertEqual(got["HTTPS"], "on")
        self.assertEqual(got["SSL_PROTOCOL"], "TLSv1.3")
        self.assertEqual(got["SSL_TLS_SNI"], "localhost")
        self.assertEqual(got["SSL_CLIENT_VERIFY"], "NONE")
        self.assertEqual(got["SSL_CIPHER"], s.cipher()[0])
        self.assertNotIn("SSL_NONSENSE", got)
        self.assertNotIn("PATH", got)
        s = d.connect("unix")
        send_all(s, b"go\n")
        got = parse(recv_until_eof(s))
        self.assertEqual(got, {"PROTO": "UNIX", "TCPREMOTEIP": "0.0.0.0",
                               "TCPREMOTEPORT": "0", "TCPLOCALIP": "0.0.0.0",
                               "TCPLOCALPORT": "0"})


@unittest.skipUnless(HAVE_OPENSSL, "the openssl command is missing")
class TlsStopTests(DaemonTestCase):
    """SIGTERM: a TLS request in progress may finish (and gets its
    close_notify) within shutdown_timeout; an idle one is cut then."""

    def test_drain_then_cut_under_every_model(self):
        d = self.daemon(conf(*[model_conf("m-" + m, m, extra=tls_group())
                               for m in MODELS],
                             globals_="shutdown_timeout = 1.5;"))
        busy, idle = {}, {}
        for m in MODELS:
            if m == "sync":
                continue    # one at a time: a second one would wait
            busy[m] = tls_connect(d, "m-" + m)
            busy[m].sendall(b"a")
            tls_recv_exactly(busy[m], 1)
        s = tls_connect(d, "m-sync")
        s.sendall(b"a")
        tls_recv_exactly(s, 1)
        idle["sync"] = s
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        d.wait_log(r"SIGTERM: stopping")
        # within the drain: a request that finishes gets its close_notify
        for m, c in busy.items():
            with self.subTest(model=m, what="drained"):
                c.sendall(b"b")
                self.assertEqual(tls_recv_exactly(c, 1), b"b")
                c.settimeout(5)
                c.unwrap().close()
        # the idle one is cut at the deadline: a ragged end, no hang
        s = idle["sync"]
        s.settimeout(10)
        with self.assertRaises((ssl.SSLError, ConnectionError)):
            while s.recv(100):
                pass
        self.assertEqual(d.wait_exit(10), 0)
        self.assertLess(time.monotonic() - t0, 8)


@unittest.skipUnless(HAVE_OPENSSL, "the openssl command is missing")
class TlsHostileTests(DaemonTestCase):

    def setUp(self):
        super().setUp()
        self.d = self.daemon(conf(
            listener_conf("ev", concurrency="event",
                          extra=tls_group() + " timeout = 1;"),
            listener_conf("th", concurrency="thread",
                          extra=tls_group() + " timeout = 1;"),
            STATUS))

    def assertServes(self):
        for name in ("ev", "th"):
            s = tls_connect(self.d, name)
            s.sendall(b"ok")
            self.assertEqual(tls_recv_exactly(s, 2), b"ok")
            s.close()

    def test_garbage_instead_of_a_client_hello(self):
        for name in ("ev", "th"):
            for _ in range(10):
                s = self.d.connect(name)
                s.sendall(b"GET / HTTP/1.0\r\n\r\n" + os.urandom(300))
                s.settimeout(5)
                try:
                    while s.recv(4096):
                        pass
                except ConnectionError:
                    pass
                s.close()
        wait_for(lambda: refused_tls(self.d) == 20, what="20 refusals")
        # logged at most once a second, with the count since the last
        lines = re.findall(r"TLS handshake failed", self.d.log())
        self.assertLess(len(lines), 10)
        self.assertServes()

    def test_a_stalled_handshake_ends_at_the_timeout(self):
        for name in ("ev", "th"):
            s = self.d.connect(name)
            s.sendall(b"\x16\x03\x01\x02\x00")   # a record header, no more
            t0 = time.monotonic()
            s.settimeout(10)
            try:
                self.assertEqual(s.recv(100), b"")
            except ConnectionError:
                pass
            self.assertLess(time.monotonic() - t0, 8)
            s.close()
        wait_for(lambda: refused_tls(self.d) == 2, what="2 refusals")
        self.d.wait_log(r"TLS handshake timed out")
        self.assertServes()

    def test_records_at_and_over_the_size_limit(self):
        for name in ("ev", "th"):
            # 16 KiB of plaintext: full records, both ways
            s = tls_connect(self.d, name)
            data = os.urandom(16384)
            s.sendall(data)
            self.assertEqual(tls_recv_exactly(s, len(data)), data)
            # then a record header announcing more than TLS allows
            # (2^14 + 2048 for a ciphertext), written under the session
            raw = socket.socket(fileno=os.dup(s.fileno()))
            raw.sendall(b"\x17\x03\x03\x48\x01" + b"\0" * 1024)
            raw.settimeout(5)
            try:
                while raw.recv(4096):
                    pass
            except ConnectionError:
                pass
            raw.close()
            s.close()
        self.assertServes()
        self.assertNotRegex(self.d.log(), r"error:")

    def test_close_without_close_notify(self):
        for name in ("ev", "th"):
            s = tls_connect(self.d, name)
            s.sendall(b"abc")
            tls_recv_exactly(s, 3)
            # the TCP connection ends under the TLS session
            raw = socket.socket(fileno=os.dup(s.fileno()))
            raw.shutdown(socket.SHUT_RDWR)
            raw.close()
            s.close()
        self.assertServes()
        self.assertNotRegex(self.d.log(), r"error:")

    def test_a_bad_record_after_the_handshake_is_no_handler_error(self):
        # A client can end its session with a forged record as often as
        # it likes: that is the client going away, not a handler error
        # logged at "error" and counted per connection.
        for name in ("ev", "th"):
            for _ in range(3):
                s = tls_connect(self.d, name)
                s.sendall(b"a")
                tls_recv_exactly(s, 1)
                raw = socket.socket(fileno=os.dup(s.fileno()))
                raw.sendall(b"\x17\x03\x03\x00\x20" + os.urandom(32))
                raw.settimeout(5)
                try:
                    while raw.recv(4096):
                        pass
                except ConnectionError:
                    pass
                raw.close()
                s.close()
        self.assertServes()
        self.assertNotRegex(self.d.log(), r"error: .*handler echo failed")
        self.assertNotRegex(self.d.log(), r"info: .*TLS: ")
        s = self.d.connect("st")
        send_all(s, b"GET /metrics HTTP/1.0\r\n\r\n")
        s.shutdown(socket.SHUT_WR)
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
        s.close()
        self.assertRegex(data, rb'sockserverd_handler_errors_total'
                               rb'\{listener="ev"\} 0\b')

    def test_a_ragged_end_is_a_sticky_eof_and_the_client_gone(self):
        # A client that half-closes TCP without close_notify: reads
        # after the end say 0 again (read(2)'s EOF), and the write that
        # can no longer go out is the client gone, not a handler error
        # at "error".  greet reads lines until 0 and numbers them.
        so = os.path.join(plugin_dir(), "greet.so")
        if not os.path.exists(so):
            self.skipTest("%s not built" % so)
        d = self.daemon(conf(
            listener_conf("g", handler=so, concurrency="event",
                          extra=tls_group() + " timeout = 5;"),
            listener_conf("t", handler=so, concurrency="thread",
                          extra=tls_group() + " timeout = 5;")))
        for name in ("g", "t"):
            s = tls_connect(d, name)
            s.sendall(b"one\n")
            out = b""
            while b"1: one\n" not in out:
                out += tls_recv_exactly(s, 1)
            s.sendall(b"two")
            raw = socket.socket(fileno=os.dup(s.fileno()))
            raw.shutdown(socket.SHUT_WR)
            raw.settimeout(5)
            try:
                while raw.recv(4096):
                    pass
            except ConnectionError:
                pass
            raw.close()
            s.close()
        d.wait_log(r"listener=t .*: 2 lines")
        self.assertNotRegex(d.log(), r"error: .*handler .*greet.* failed")

    def test_client_renegotiation_is_refused(self):
        port = self.d.listener("ev").port
        p = subprocess.Popen(["openssl", "s_client", "-tls1_2", "-connect",
                              "127.0.0.1:%d" % port],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
        try:
            out, _ = p.communicate(b"R\n", timeout=20)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertIn(b"RENEGOTIATING", out)
        self.assertIn(b"no renegotiation", out)
        self.assertServes()

    def test_many_handshakes_at_once(self):
        # A listener of its own: 1 s for a handshake is short for 300 at
        # once on a loaded machine (or under a sanitizer).
        d = self.daemon(conf(listener_conf(
            "many", concurrency="event",
            extra=tls_group() + " timeout = 60; queue_size = 1024;")))
        n = 300
        ctx = client_ctx()
        socks = []
        for _ in range(n):
            raw = d.connect("many", 10)
            raw.setblocking(False)
            socks.append(ctx.wrap_socket(raw, server_hostname="localhost",
                                         do_handshake_on_connect=False))
        pending = set(socks)
        dl = Deadline(60)
        while pending and not dl.expired():
            want_r, want_w = [], []
            for s in list(pending):
                try:
                    s.do_handshake()
                    pending.discard(s)
                except ssl.SSLWantReadError:
                    want_r.append(s)
                except ssl.SSLWantWriteError:
                    want_w.append(s)
            if pending:
                select.select(want_r, want_w, [], 1)
        self.assertFalse(pending, "%d handshakes unfinished" % len(pending))
        for s in socks:
            s.close()
        self.assertServes()


@unittest.skipUnless(HAVE_OPENSSL, "the openssl command is missing")
class TlsConfigTests(DaemonTestCase):
    """Every problem of the tls group at FILE:LINE, from -t."""

    def check(self, group, pattern, listener_extra=""):
        tmp = tempfile.mkdtemp(prefix="ssd-tls-c-")
        self.addCleanup(shutil.rmtree, tmp, True)
        path = os.path.join(tmp, "bad.conf")
        with open(path, "w") as f:
            f.write('listeners = (\n{ name = "e"; address = "127.0.0.1"; '
                    'port = 0; handler = "echo"; %s\n'
                    '  tls = {\n%s\n  };\n} );\n' % (listener_extra, group))
        r = run_binary(["-t", "-c", path])
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 1, err)
        self.assertRegex(err, re.escape(path) + r":\d+: " + pattern)
        return err

    def kv(self, **kw):
        base = {"certificate": cert("ec.pem"), "key": cert("ec.key")}
        base.update(kw)
        return "\n".join('    %s = "%s";' % (k, v) for k, v in base.items()
                         if v is not None)

    def test_files(self):
        self.check(self.kv(certificate="/nonexistent/c.pem"),
                   r"certificate /nonexistent/c.pem: No such file")
        self.check(self.kv(certificate=cert("garbage.pem")),
                   r"certificate .*garbage.pem: ")
        self.check(self.kv(key=cert("rsa.key")),
                   r"key .*rsa.key.*does not match")
        self.check(self.kv(key=cert("encrypted.key")),
                   r"key .*encrypted.key: is encrypted")
        self.check(self.kv(key=None), r'"tls" has no "key"')
        self.check(self.kv(certificate="relative.pem"),
                   r'"certificate" must be an absolute path')
        self.check(self.kv(client_ca=cert("garbage.pem"),
                           verify_client="require"),
                   r"client_ca .*garbage.pem: ")

    def test_settings(self):
        self.check(self.kv(verify_client="optional"),
                   r'"verify_client" = "optional" needs "client_ca"')
        self.check(self.kv(verify_client="sometimes"),
                   r'"verify_client" must be none, optional or require')
        self.check(self.kv(min_version="1.1"),
                   r'"min_version" must be "1.2" or "1.3"')
        self.check(self.kv(ciphers="NOTACIPHER"),
                   r'"ciphers": no cipher of "NOTACIPHER"')
        self.check(self.kv(ciphersuites="TLS_FAKE_SUITE"),
                   r'"ciphersuites": "TLS_FAKE_SUITE" is not')
        self.check(self.kv() + '\n    alpn = [ "" ];',
                   r'"alpn" protocol names are 1 to 255 bytes')
        self.check(self.kv() + "\n    colour = 1;",
                   r'unknown tls setting "colour"')
        self.check(self.kv() + '\n    sni = ( { server_name = "bad name"; '
                   'certificate = "%s"; key = "%s"; } );' % (
                       cert("other.pem"), cert("other.key")),
                   r'"server_name" "bad name" is not a host name')
        self.check(self.kv() + '\n    sni = ( { server_name = "*.x.org"; '
                   'certificate = "%s"; key = "%s"; } );' % (
                       cert("other.pem"), cert("ec.key")),
                   r"key .*ec.key.*does not match")
        self.check(self.kv(), r'"tls" applies to stream listeners only',
                   listener_extra='type = "dgram";')
        # a list element has no name: never "(null)" (NULL to %s)
        err = self.check(self.kv() + '\n    sni = ( 1 );',
                         r'each sni entry must be a group')
        self.assertNotIn("(null)", err)

    def test_sni_entry_without_a_name_then_another(self):
        # An unnamed (or wrongly typed) sni entry is reported; the
        # duplicate check of the next entry must not compare with it
        # (it crashed -t, and a reload took the daemon down).
        sni = ('\n    sni = ( { certificate = "%s"; key = "%s"; },\n'
               '      { server_name = 5; certificate = "%s"; key = "%s"; },\n'
               '      { server_name = "other.example"; certificate = "%s";'
               ' key = "%s"; } );' % ((cert("other.pem"), cert("other.key"))
                                      * 3))
        err = self.check(self.kv() + sni, r'sni entry has no "server_name"')
        self.assertRegex(err, r':\d+: "server_name" must be a string')
        # the same file given to a running daemon: refused, and it runs on
        c = conf(listener_conf("e", concurrency="event", extra=tls_group()))
        d = self.daemon(c)
        d.rewrite(conf(listener_conf("e", concurrency="event",
                                     extra=tls_group(extra=sni))))
        d.signal(signal.SIGHUP)
        d.wait_log(r'sni entry has no "server_name"')
        self.assertTrue(d.running())
        s = tls_connect(d, "e")
        s.sendall(b"1")
        self.assertEqual(tls_recv_exactly(s, 1), b"1")
        s.close()

    def test_good_group_passes(self):
        tmp = tempfile.mkdtemp(prefix="ssd-tls-c-")
        self.addCleanup(shutil.rmtree, tmp, True)
        path = os.path.join(tmp, "good.conf")
        with open(path, "w") as f:
            f.write(conf(listener_conf("e", extra=tls_group(extra=(
                'sni = ( { server_name = "other.example"; certificate = '
                '"%s"; key = "%s"; } ); client_ca = "%s"; verify_client = '
                '"optional"; min_version = "1.3"; ciphers = ""; '
                'ciphersuites = "TLS_AES_128_GCM_SHA256"; alpn = [ "h2" ]; '
                'session_tickets = false;' % (
                    cert("other.pem"), cert("other.key"),
                    cert("clientca.pem")))))))
        r = run_binary(["-t", "-c", path])
        self.assertEqual(r.returncode, 0, r.stderr.decode())


if __name__ == "__main__":
    unittest.main()
