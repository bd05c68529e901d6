#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
"""make check-deb: the Debian package, built, linted, installed, started.

  1. a copy of the tree (the files git tracks, and new ones it does not
     ignore) in build/deb-check/sockserverd-VERSION, made a git repository
     of its own;
  2. dpkg-buildpackage -us -uc there (source and binary: -b makes the
     same .debs), with WERROR=1 (debian/rules passes it to make); the
     packages land in build/deb-check/; then `git status` in the copy
     must show nothing (the build leaves no file that .gitignore misses),
     and the source package must leave out a build/ and a ./sockserverd
     put in the copy first;
  3. lintian on the .changes, source and binaries: any E: or W: fails
     (I: are shown);
  4. the packages' contents and control data (dpkg-deb): the files, the
     conffile, the postinst that enables and starts the unit;
  5. as root: check-systemd's cached bookworm root (build/systemd-root,
     made by debootstrap the first time), copied once more into
     build/deb-root with what the packages depend on (apt-get, from the
     Debian mirror; made again when the dependencies change), then
     copied to build/deb-check/root and booted with systemd-nspawn
     --boot --private-network; a oneshot unit inside runs inside-deb.py,
     which installs the package with dpkg under the running systemd and
     checks it (files, sockserverd -t, unit enabled and active, echo,
     reload, conffile kept on reinstall, -dev, remove, purge);
  6. the results are printed; the container, the root copy and the source
     copy are removed (the .debs, the build log and the lintian output
     stay in build/deb-check/).

Missing packaging tools (debhelper, lintian, dpkg-dev) or Build-Depends:
installed with apt-get when root, else "SKIP: why" and exit 0.  Steps 5
and 6 need root and systemd-nspawn, and a Debian mirror the first time;
without them they are skipped, saying why (steps 1-4 still count).  Exit 1
if a check failed.

Environment: SSD_SYSTEMD_ROOT, DEBIAN_MIRROR (as check-systemd).
Options: --keep   keep the root copy and the source copy afterwards."""

import glob
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.join(ROOT, "build")
WORK = os.path.join(BUILD, "deb-check")
DEPROOT = os.path.join(BUILD, "deb-root")
SHARE = "usr/local/share/ssd-deb-test"  # in the container

TOOLS = {"dpkg-buildpackage": "dpkg-dev", "dh": "debhelper",
         "lintian": "lintian", "git": "git"}
APT_TIMEOUT = 900
BUILD_TIMEOUT = 900
LINTIAN_TIMEOUT = 300
RUN_TIMEOUT = 300       # boot, every check, poweroff

TEST_UNIT = """\
[Unit]
Description=sockserverd check-deb
After=basic.target

[Service]
Type=oneshot
ExecStart=/usr/bin/python3 /%(share)s/inside-deb.py /results %(plugins)s
ExecStopPost=/bin/systemctl --no-block poweroff
TimeoutStartSec=%(timeout)d
StandardOutput=journal+console
StandardError=journal+console
"""


def load_check_systemd():
    """check-systemd.py as a module: its cached root, its tools and its
    nspawn boot, with our name in its messages."""
    path = os.path.join(ROOT, "tests/systemd/check-systemd.py")
    spec = importlib.util.spec_from_file_location("check_systemd", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.log = log
    mod.skip = skip_root
    mod.WORK = WORK                 # boot() writes console.log here
    mod.RUN_TIMEOUT = RUN_TIMEOUT
    return mod


def log(msg):
    print("check-deb: " + msg, flush=True)


def skip(why):
    print("SKIP: check-deb: " + why, flush=True)
    sys.exit(0)


class SkipRoot(Exception):
    pass


def skip_root(why):
    raise SkipRoot(why)


def fail(msg, out=None):
    if out:
        print(out.rstrip())
    log("FAIL: " + msg)
    sys.exit(1)


def quiet(argv, timeout, **kw):
    """Runs argv with its output in a string; (rc, output).  At the
    timeout, its process group (its own session: what it started, make
    and the compilers under dpkg-buildpackage) gets SIGKILL."""
    kw.setdefault("stdin", subprocess.DEVNULL)
    try:
        p = subprocess.Popen(argv, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, start_new_session=True,
                             **kw)
    except OSError as e:
        return -1, "%s: %s" % (argv[0], e)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        return -1, "%s: timed out after %ds" % (argv[0], timeout)
    except BaseException:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        raise
    return p.returncode, out.decode("utf-8", "replace")


def apt_env():
    return dict(os.environ, DEBIAN_FRONTEND="noninteractive")


def apt_install(pkgs):
    argv = ["apt-get", "install", "-y", "-q", "--no-install-recommends"]
    rc, out = quiet(argv + pkgs, APT_TIMEOUT, env=apt_env())
    if rc != 0:
        rc, out = quiet(["apt-get", "update", "-q"], APT_TIMEOUT,
                        env=apt_env())
        if rc == 0:
            rc, out = quiet(argv + pkgs, APT_TIMEOUT, env=apt_env())
    return rc, out


def tools():
    missing = sorted({pkg for tool, pkg in TOOLS.items()
                      if shutil.which(tool) is None})
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        skip("missing packages %s (root installs them)" % " ".join(missing))
    log("installing " + " ".join(missing))
    rc, out = apt_install(missing)
    if rc != 0 or any(shutil.which(t) is None for t in TOOLS):
        skip("cannot install %s:\n%s" % (" ".join(missing), out[-2000:]))


def copy_tree():
    """The source copy, a git repository of its own; its path."""
    rc, version = quiet(["dpkg-parsechangelog", "-l",
                         os.path.join(ROOT, "debian/changelog"),
                         "-S", "Version"], 60)
    if rc != 0:
        fail("dpkg-parsechangelog", version)
    src = os.path.join(WORK, "sockserverd-" + version.strip())
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(src)
    rc, out = quiet(["git", "-C", ROOT, "ls-files", "-z", "-c", "-o",
                     "--exclude-standard"], 60)
    if rc != 0:
        fail("git ls-files (check-deb copies the files git knows)", out)
    for rel in sorted(set(p for p in out.split("\0") if p)):
        from_ = os.path.join(ROOT, rel)
        if not os.path.lexists(from_):     # deleted, not yet committed
            continue
        to = os.path.join(src, rel)
        os.makedirs(os.path.dirname(to), exist_ok=True)
        shutil.copy2(from_, to, follow_symlinks=False)
    git = ["git", "-C", src, "-c", "user.name=check-deb",
           "-c", "user.email=check-deb@example.org"]
    for args in (["init", "-q"], ["add", "-A"],
                 ["commit", "-q", "-m", "check-deb"]):
        rc, out = quiet(git + args, 120)
        if rc != 0:
            fail("git " + args[0] + " in the copy", out)
    return src


def build(src):
    rc, out = quiet(["dpkg-checkbuilddeps"], 60, cwd=src)
    if rc != 0:
        if os.geteuid() != 0:
            skip("unmet Build-Depends (root installs them):\n" + out)
        log("installing the Build-Depends")
        rc, out = quiet(["apt-get", "build-dep", "-y", "-q", src],
                        APT_TIMEOUT, env=apt_env())
        if rc != 0:
            rc, out = quiet(["sh", "-c", "apt-get update -q && apt-get "
                             "build-dep -y -q \"$0\"", src], APT_TIMEOUT,
                            env=apt_env())
        if rc != 0:
            skip("cannot install the Build-Depends:\n" + out[-2000:])
    # What a build in the tree leaves, which the source package must
    # leave out (debian/source/options); .gitignore hides them from git.
    os.makedirs(os.path.join(src, "build"))
    for f in ("build/left-by-a-build", "sockserverd"):
        with open(os.path.join(src, f), "w") as fp:
            fp.write("not source\n")
    log("dpkg-buildpackage -us -uc (WERROR=1), log in "
        "build/deb-check/build.log")
    # Not the caller's make, flags or Check settings (.ci/run's TAP log
    # would be overwritten by the package's unit tests).
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "DESTDIR",
                        "CFLAGS", "CPPFLAGS", "LDFLAGS", "SANITIZER", "B",
                        "SSD") and not k.startswith("CK_")}
    env["WERROR"] = "1"
    t0 = time.monotonic()
    rc, out = quiet(["dpkg-buildpackage", "-us", "-uc"],
                    BUILD_TIMEOUT, cwd=src, env=env)
    with open(os.path.join(WORK, "build.log"), "w") as f:
        f.write(out)
    if rc != 0:
        fail("dpkg-buildpackage failed", "\n".join(out.splitlines()[-60:]))
    log("PASS: build (%.0fs)" % (time.monotonic() - t0))
    rc, out = quiet(["git", "-C", src, "status", "--porcelain"], 60)
    if rc != 0 or out.strip():
        fail("the build leaves files that git status shows (add them to "
             ".gitignore):", out)
    log("PASS: git status clean after the build")
    tars = glob.glob(os.path.join(WORK, "sockserverd_*.tar.*"))
    rc, out = quiet(["tar", "tf", tars[0]] if len(tars) == 1 else
                    ["false"], 120)
    names = [n.split("/", 1)[1] for n in out.splitlines() if "/" in n]
    bad = [n for n in names if n.split("/")[0] in ("build", "sockserverd",
                                                   ".git")]
    if rc != 0 or bad or "debian/rules" not in names:
        fail("the source package %s holds %s" % (tars, bad[:5] or out[-500:]))
    log("PASS: source package without build/, ./sockserverd or .git")


def lint():
    changes = glob.glob(os.path.join(WORK, "sockserverd_*.changes"))
    if len(changes) != 1:
        fail("no single .changes in " + WORK)
    rc, out = quiet(["lintian", "--display-info", "--fail-on",
                     "error,warning", changes[0]], LINTIAN_TIMEOUT)
    out = "\n".join(ln for ln in out.splitlines()
                    if "running with root privileges" not in ln)
    with open(os.path.join(WORK, "lintian.log"), "w") as f:
        f.write(out + "\n")
    if out.strip():
        print(out)
    bad = [ln for ln in out.splitlines() if ln[:2] in ("E:", "W:")]
    if rc != 0 or bad:
        fail("lintian: %d errors and warnings (exit %d)" % (len(bad), rc))
    log("PASS: lintian (no E: or W:)")


def deb(name):
    found = glob.glob(os.path.join(WORK, name + "_*.deb"))
    if len(found) != 1:
        fail("%s_*.deb: %d files in %s" % (name, len(found), WORK))
    return found[0]


def plugins():
    """The plugins the package ships: the examples, and python (its
    Build-Depends has python3-dev)."""
    names = [os.path.basename(p)[:-2] for p in
             glob.glob(os.path.join(ROOT, "handlers/examples/*.c"))]
    if glob.glob(os.path.join(ROOT, "handlers/python/*.c")):
        names.append("python")
    return sorted(names)


def contents():
    """What the packages hold, read with dpkg-deb."""
    want = {"sockserverd": ["./usr/sbin/sockserverd",
                            "./lib/systemd/system/sockserverd.service",
                            "./etc/sockserverd.conf",
                            "./usr/share/man/man8/sockserverd.8.gz",
                            "./usr/share/man/man5/sockserverd.conf.5.gz",
                            "./usr/lib/sockserverd/handlers/"] +
            ["./usr/lib/sockserverd/handlers/%s.so" % p for p in plugins()],
            "sockserverd-dev": ["./usr/include/sockserverd.h",
                                "./usr/share/pkgconfig/sockserverd.pc",
                                "./usr/share/man/man3/"
                                "sockserverd-handler.3.gz"]}
    for pkg, paths in want.items():
        rc, out = quiet(["dpkg-deb", "-c", deb(pkg)], 60)
        have = {ln.split()[-1] for ln in out.splitlines() if ln.strip()}
        missing = [p for p in paths if p not in have]
        if rc != 0 or missing:
            fail("%s lacks %s" % (pkg, " ".join(missing)), out)
    ctl = os.path.join(WORK, "control")
    rc, out = quiet(["dpkg-deb", "-e", deb("sockserverd"), ctl], 60)
    if rc != 0:
        fail("dpkg-deb -e", out)
    try:
        with open(os.path.join(ctl, "conffiles")) as f:
            conffiles = f.read().split()
        with open(os.path.join(ctl, "postinst")) as f:
            postinst = f.read()
    except OSError as e:
        fail("control data: %s" % e)
    if "/etc/sockserverd.conf" not in conffiles:
        fail("/etc/sockserverd.conf is not a conffile: %s" % conffiles)
    for text in ("deb-systemd-helper enable 'sockserverd.service'",
                 "deb-systemd-invoke $_dh_action 'sockserverd.service'"):
        if text not in postinst:
            fail("the postinst lacks %r" % text, postinst)
    log("PASS: contents (%s plugins; conffile; postinst enables and "
        "starts the unit)" % " ".join(plugins()))


def depends():
    """The packages our two need, but for each other: first choices,
    without versions."""
    names = set()
    for pkg in ("sockserverd", "sockserverd-dev"):
        rc, out = quiet(["dpkg-deb", "-f", deb(pkg), "Depends"], 60)
        if rc != 0:
            fail("dpkg-deb -f", out)
        for dep in out.split(","):
            name = dep.split("|")[0].split("(")[0].strip().split(":")[0]
            if name and not name.startswith("sockserverd"):
                names.add(name)
    return sorted(names)


def deps_root(cs):
    """check-systemd's cached root with the packages' dependencies in it,
    kept in build/deb-root and made again when they change."""
    base = cs.base_root()
    deps = depends()
    with open(os.path.join(cs.CACHE, "stamp")) as f:
        want = f.read() + " ".join(deps) + "\n"
    stamp = os.path.join(DEPROOT, "stamp")
    root = os.path.join(DEPROOT, "root")
    try:
        with open(stamp) as f:
            if f.read() == want and os.path.isdir(root):
                return root
    except OSError:
        pass
    shutil.rmtree(DEPROOT, ignore_errors=True)
    tmp = os.path.join(DEPROOT, "tmp")
    os.makedirs(DEPROOT)
    rc, out = quiet(["cp", "-a", "--reflink=auto", base, tmp], 300)
    if rc != 0:
        fail("copying the root", out)
    log("apt-get install in the root: " + " ".join(deps))
    shutil.copy("/etc/resolv.conf", os.path.join(tmp, "etc/resolv.conf"))
    rc, out = quiet(["chroot", tmp, "sh", "-c", "apt-get update -q && "
                     "apt-get install -y -q --no-install-recommends \"$@\" "
                     "&& apt-get clean", "sh"] + deps, APT_TIMEOUT,
                    env=apt_env())
    if rc != 0:
        shutil.rmtree(DEPROOT, ignore_errors=True)
        skip_root("apt-get in the root failed (offline?):\n" + out[-2000:])
    os.rename(tmp, root)
    with open(stamp, "w") as f:
        f.write(want)
    return root


def prepare(base):
    root = os.path.join(WORK, "root")
    results = os.path.join(WORK, "results")
    for d in (root, results):
        if os.path.lexists(d):
            shutil.rmtree(d)
    os.makedirs(results)
    rc, out = quiet(["cp", "-a", "--reflink=auto", base, root], 300)
    if rc != 0:
        fail("copying the root", out)
    share = os.path.join(root, SHARE)
    os.makedirs(share, exist_ok=True)
    for f in (os.path.join(HERE, "inside-deb.py"), deb("sockserverd"),
              deb("sockserverd-dev")):
        shutil.copy(f, share)
    unit = os.path.join(root, "etc/systemd/system/ssd-deb-test.service")
    with open(unit, "w") as f:
        f.write(TEST_UNIT % {"share": SHARE, "plugins": " ".join(plugins()),
                             "timeout": RUN_TIMEOUT - 60})
    wants = os.path.join(root, "etc/systemd/system/multi-user.target.wants")
    os.makedirs(wants, exist_ok=True)
    os.symlink("/etc/systemd/system/ssd-deb-test.service",
               os.path.join(wants, "ssd-deb-test.service"))
    return root, results


def in_root(cs, keep):
    """Steps 5 and 6; the number of failed checks."""
    if os.geteuid() != 0:
        raise SkipRoot("needs root (debootstrap, systemd-nspawn)")
    cs.tools()
    root, results = prepare(deps_root(cs))
    rc = None
    try:
        rc = cs.boot(root, results)
    finally:
        # Only once the container is gone (boot() waited for it).
        if rc is not None and not keep:
            shutil.rmtree(root, ignore_errors=True)
    log("the container exited with status %s" % rc)
    lines = []
    try:
        with open(os.path.join(results, "log")) as f:
            lines = f.read().splitlines()
    except OSError:
        pass
    for ln in lines:
        print(ln)
    failed = [ln for ln in lines if ln.startswith("FAIL")]
    complete = os.path.exists(os.path.join(results, "done"))
    if failed or not complete:
        for p in [os.path.join(results, "journal")] + \
                ([] if complete else [os.path.join(WORK, "console.log")]):
            if os.path.exists(p):
                with open(p, errors="replace") as f:
                    tail = f.read().replace("\r", "").splitlines()[-80:]
                print("---- %s (last 80 lines) ----" % p)
                print("\n".join(tail))
    if not complete:
        log("FAIL: the checks in the container did not finish")
        return len(failed) + 1
    return len(failed)


def terminated(signum, frame):
    raise SystemExit("check-deb: signal %d" % signum)


def main():
    signal.signal(signal.SIGTERM, terminated)
    signal.signal(signal.SIGHUP, terminated)
    keep = "--keep" in sys.argv[1:]
    t0 = time.monotonic()
    tools()
    src = copy_tree()
    build(src)
    lint()
    contents()
    cs = load_check_systemd()
    done = "all checks passed"
    try:
        nfail = in_root(cs, keep)
    except SkipRoot as e:
        print("SKIP: check-deb: installing in a bookworm root: %s" % e,
              flush=True)
        nfail = 0
        done = "build, lintian and contents passed; install skipped"
    if not keep:
        shutil.rmtree(src, ignore_errors=True)
    log("%s, %.0fs" % ("FAIL: %d checks failed" % nfail if nfail
                       else done, time.monotonic() - t0))
    return 1 if nfail else 0


if __name__ == "__main__":
    sys.exit(main())
