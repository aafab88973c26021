"""No root while the guest runs (docs/security.md): `tern run --user USER`
opens what needs root and then runs as USER on every thread, with no
capability in any set, no supplementary group and no_new_privs; snapshots,
restores and migrations go on working after the drop. tern also runs with
no root at all, given a KVM device node and a TAP its user may open."""
import os
import pwd
import subprocess

from migratelib import STAMP, Tern, destination, finish_guest, free_port, migrate, source, still_running, wait_passes
from ternlib import check, one_error_line, run_tern

USER = "nobody"
CAP_SETS = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")


def ids():
    pw = pwd.getpwnam(USER)
    return pw.pw_uid, pw.pw_gid


def task_status(pid):
    """[(thread name, {field: value})] of every thread of pid."""
    out = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                out.append(dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line))
        except OSError:
            continue  # gone meanwhile
    return [(st["Name"], st) for st in out]


def check_dropped(pid, what):
    """Every thread of pid: the user's ids (real, effective, saved, fs),
    no supplementary group, empty capability sets, no_new_privs, a filter."""
    uid, gid = ids()
    tasks = task_status(pid)
    check(tasks, f"{what}: no threads")
    for name, st in tasks:
        check(st["Uid"].split() == [str(uid)] * 4, f"{what}: thread {name} has Uid {st['Uid']}")
        check(st["Gid"].split() == [str(gid)] * 4, f"{what}: thread {name} has Gid {st['Gid']}")
        check(st.get("Groups", "").strip() == "", f"{what}: thread {name} is in groups {st.get('Groups')}")
        for c in CAP_SETS:
            check(int(st[c], 16) == 0, f"{what}: thread {name} has {c} {st[c]}")
        check(st["NoNewPrivs"].strip() == "1", f"{what}: thread {name} lacks no_new_privs")
        check(st["Seccomp"].strip() == "2", f"{what}: thread {name} has no seccomp filter")
    return len(tasks)


def user_dir(ctx, name):
    """A directory USER owns, inside the test's (which it may traverse)."""
    uid, gid = ids()
    os.chmod(ctx.path(""), 0o711)
    d = ctx.path(name)
    os.mkdir(d, 0o700)
    os.chown(d, uid, gid)
    return d


def test_user_drops_everything_and_keeps_working(ctx):
    """A source with --user: dropped on every thread; a snapshot into a
    directory the user owns works, one into root's directory fails with a
    clear error and the VM runs on; the VM migrates to a destination that
    drops too, and the snapshot restores with --user."""
    snaps = user_dir(ctx, "snaps")
    src = source(ctx, "src", extra=["--user", USER])
    try:
        threads = check_dropped(src.t.p.pid, "source")
        still_running(src, 1)
        out = src.api.client_ok("snapshot", "--path", os.path.join(snaps, "s1"))
        check(out["type"] == "full", f"snapshot: {out}")
        os.mkdir(ctx.path("root-only"), 0o755)
        p = src.api.client("snapshot", "--path", ctx.path("root-only/s2"))
        check(p.returncode == 1 and "Permission denied" in p.stderr, f"a snapshot where {USER} may not write: "
                                                                      f"{p.stderr!r}")
        check(not os.path.exists(ctx.path("root-only/s2")), "a refused snapshot left a directory")
        still_running(src, 1)
        port = free_port()
        dst = destination(ctx, "dst", f"tcp:127.0.0.1:{port}", extra=["--user", USER])
        try:
            rc, _, err = migrate(src, f"tcp:127.0.0.1:{port}")
            check(rc == 0, f"migration between dropped terns: {err}")
            check_dropped(dst.t.p.pid, "destination")
            finish_guest(dst, "the destination")
        finally:
            dst.kill()
        src.t.finish()
    finally:
        src.kill()
    rst = Tern(ctx, "restored", ["--restore", os.path.join(snaps, "s1"), "--user", USER])
    try:
        wait_passes(rst.t, 1)
        check_dropped(rst.t.p.pid, "restored")
        finish_guest(rst, "the restored guest")
    finally:
        rst.kill()
    print(f"# {threads} threads of the source checked: uid/gid {ids()}, no capabilities, no_new_privs")


def test_no_root_at_all(ctx):
    """Started as the user, not as root: a KVM device node and a TAP that
    the user may open are all it needs; the guest runs with its network."""
    uid, gid = ids()
    home = user_dir(ctx, "home")
    kvm = os.path.join(home, "kvm")
    st = os.stat("/dev/kvm")
    os.mknod(kvm, 0o600 | 0o020000, st.st_rdev)
    os.chown(kvm, uid, gid)
    tap = f"tu{os.getpid() % 100000}"
    subprocess.run(["ip", "tuntap", "add", "dev", tap, "mode", "tap", "user", str(uid), "group", str(gid)],
                   check=True)
    try:
        subprocess.run(["ip", "link", "set", tap, "up"], check=True)
        # Debian makes /dev/net/tun 0666; where it is not, the user gets a
        # node of its own over it, in a mount namespace of the test's
        tun = os.path.join(home, "tun")
        os.mknod(tun, 0o600 | 0o020000, os.stat("/dev/net/tun").st_rdev)
        os.chown(tun, uid, gid)
        prefix = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                  'mount --bind "$0" /dev/net/tun && exec "$@"', tun,
                  "setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--inh-caps=-all",
                  "--bounding-set=-all"]
        t = Tern(ctx, "home/u", ["--kvm-device", kvm, "--kernel", ctx.guest_elf, "--memory", "64M",
                                 "--cmdline", f"test={STAMP}", "--net", f"vdpa-sim,tap={tap}", "--user", USER],
                 prefix=prefix)
        try:
            wait_passes(t.t, 1)
            check_dropped(t.t.p.pid, "an unprivileged tern")
            with open(f"/sys/class/net/{tap}/carrier") as f:
                check(f.read().strip() == "1", f"the TAP {tap} has no carrier: tern does not hold it")
            finish_guest(t, "the unprivileged guest")
        finally:
            t.kill()
    finally:
        subprocess.run(["ip", "tuntap", "del", "dev", tap, "mode", "tap"])


def test_user_refusals(ctx):
    """Root, unknown users and groups, and a non-root tern asked to become
    someone else: one clear error each, before any VM is built."""
    base = ["--kernel", ctx.guest_elf, "--memory", "64M", "--cmdline", "test=exit"]
    for spec, needle in (("root", "is root"), ("0", "is root"), (f"{USER}:root", "is root"),
                         ("no-such-user-tern", "no user 'no-such-user-tern'"),
                         (f"{USER}:no-such-group-tern", "no group 'no-such-group-tern'"),
                         ("", "is not USER[:GROUP]")):
        r = run_tern(ctx, base + ["--user", spec], testdev=False)
        check(r.rc == 1 and needle in one_error_line(r), f"--user {spec!r}", r)
    uid, gid = ids()
    kvm = os.path.join(user_dir(ctx, "home"), "kvm")
    os.mknod(kvm, 0o600 | 0o020000, os.stat("/dev/kvm").st_rdev)
    os.chown(kvm, uid, gid)
    p = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", ctx.tern, "run"] + base +
                       ["--kvm-device", kvm, "--user", "daemon"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=30)
    check(p.returncode == 1 and "cannot change its ids" in p.stderr,
          f"an unprivileged tern told to become daemon: {p.stderr!r}")
