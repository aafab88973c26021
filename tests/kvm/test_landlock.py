"""Filesystem confinement (docs/security.md): with --landlock a tern may
open only the paths its options name, with the access each needs, and the
directories given with --landlock-allow; anything else fails with the
system's EACCES while the VM runs on. Snapshots into an allowed directory,
restores, migrations over a UNIX socket, disks and the software vDPA
device keep working, with --user and seccomp on as well."""
import os

from migratelib import STAMP, Tern, destination, finish_guest, migrate, source, still_running
from ternlib import check, one_error_line, run_tern


def devices(ctx, name):
    """A blank 1 MiB disk and a software vDPA device whose wire socket is
    made in socks/ (a directory --landlock lets tern write for it)."""
    os.makedirs(ctx.path("socks"), exist_ok=True)
    img = ctx.path(f"{name}.img")
    with open(img, "wb") as f:
        f.truncate(1 << 20)
    wire = ctx.path(f"socks/{name}.wire")
    return ["--disk", f"path={img}", "--net", f"vdpa-sim,socket={wire},peer={wire}"]


def landlock_source(ctx, name, allow, extra=()):
    return source(ctx, name, extra=["--landlock", "--landlock-allow", allow] + devices(ctx, name) + list(extra))


def test_only_named_paths(ctx):
    """A confined source: a snapshot where it was allowed works, one
    elsewhere fails (EACCES) and leaves nothing; the VM runs on, then
    migrates over a UNIX socket to a confined destination; the snapshot
    restores under --landlock."""
    snaps = ctx.path("snaps")
    os.mkdir(snaps)
    os.mkdir(ctx.path("elsewhere"))
    src = landlock_source(ctx, "src", snaps)
    try:
        still_running(src, 1)
        out = src.api.client_ok("snapshot", "--path", os.path.join(snaps, "s1"))
        check(out["type"] == "full", f"snapshot: {out}")
        p = src.api.client("snapshot", "--path", ctx.path("elsewhere/s2"))
        check(p.returncode == 1 and "Permission denied" in p.stderr, f"a snapshot outside: {p.stderr!r}")
        check(os.listdir(ctx.path("elsewhere")) == [], "a refused snapshot left files")
        still_running(src, 1)
        addr = "unix:" + ctx.path("socks/mig.sock")
        dst = destination(ctx, "dst", addr, extra=["--landlock"] + devices(ctx, "dst"))
        try:
            rc, _, err = migrate(src, addr)
            check(rc == 0, f"a migration between confined terns: {err}")
            finish_guest(dst, "the destination")
        finally:
            dst.kill()
        src.t.finish()
    finally:
        src.kill()
    rst = Tern(ctx, "rst", ["--restore", os.path.join(snaps, "s1"), "--landlock"] + devices(ctx, "rst"))
    try:
        finish_guest(rst, "the restored guest")
    finally:
        rst.kill()


def test_landlock_with_user_and_seccomp(ctx):
    """All three at once: --landlock, --user nobody and the seccomp
    filters; the guest runs, and a snapshot lands in the one directory
    that is both allowed and the user's."""
    import pwd
    pw = pwd.getpwnam("nobody")
    os.chmod(ctx.path(""), 0o711)
    snaps = ctx.path("snaps")
    os.mkdir(snaps, 0o700)
    os.chown(snaps, pw.pw_uid, pw.pw_gid)
    src = landlock_source(ctx, "all", snaps, extra=["--user", "nobody"])
    try:
        still_running(src, 1)
        out = src.api.client_ok("snapshot", "--path", os.path.join(snaps, "s"))
        check(out["type"] == "full", f"snapshot: {out}")
        finish_guest(src, "the confined guest")
    finally:
        src.kill()


def test_landlock_refusals(ctx):
    """--landlock-allow without --landlock, and a directory to allow that
    does not exist: one clear error each, before any VM is built."""
    base = ["--kernel", ctx.guest_elf, "--memory", "64M", "--cmdline", f"test={STAMP}"]
    r = run_tern(ctx, base + ["--landlock-allow", ctx.path("")], testdev=False)
    check(r.rc == 1 and "goes with --landlock" in one_error_line(r), "allow without --landlock", r)
    r = run_tern(ctx, base + ["--landlock", "--landlock-allow", ctx.path("missing")], testdev=False)
    check(r.rc == 1 and "missing" in one_error_line(r), "a missing directory", r)
