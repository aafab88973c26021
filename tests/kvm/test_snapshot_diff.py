"""Diff snapshots and the copying restore mode, as a user meets them: a
page-stamp guest with a 4 MiB working set in 64 MiB is snapshotted in full,
then as diffs that hold only what it wrote since; restores of any link of
the chain, across processes and generations, pass the guest's check of
every page; broken chains and misuse give one clear line."""
import os
import shutil
import subprocess

from ternlib import check, one_error_line, run_tern, spawn_tern
from test_api import Api, wait_socket
from test_snapshot import stamp_passes, wait_passes

STAMP = "stamp mb=64 hot=4"
TOTAL_PAGES = 64 * 256
HOT_PAGES = 4 * 256


def data_bytes(snap):
    """Bytes of data (not holes) in a snapshot's memory file."""
    mem = [f for f in os.listdir(snap) if f.startswith("memory.")]
    check(len(mem) == 1, f"{snap} holds {os.listdir(snap)}")
    return os.stat(os.path.join(snap, mem[0])).st_blocks * 512


def tracked(ctx, extra=()):
    return Api(ctx, test=STAMP, cpus=2, memory="128M", ready="stamp pass=2",
               extra=["--track-dirty"] + list(extra))


def snap(api, path, diff):
    args = ["--path", path] + (["--diff"] if diff else [])
    out = api.client_ok("snapshot", *args)
    check(out["type"] == ("diff" if diff else "full"), f"snapshot answered {out}")
    return out["pages"]


def wait_more(t, n=2):
    wait_passes(t, len(stamp_passes(t)) + n)


def check_restores(ctx, path, gen, extra=()):
    t = spawn_tern(ctx, ["--restore", path] + list(extra), reports=f"restore{gen}.txt")
    wait_passes(t, 2)
    t.send(b"q")
    r = t.finish()
    check(r.rc == 0 and any(x.startswith("stamp ok") for x in r.reports),
          f"restore of {os.path.basename(path)} failed its page check", r)
    check(not any(x.startswith("up ") for x in r.reports), "the restored guest booted afresh", r)


def test_diff_chain_across_processes(ctx):
    """full -> diff -> diff -> diff in one process; restore the newest with
    --track-dirty, run, diff again (a chain of four diffs over two
    processes); every link restores and passes the page check."""
    api = tracked(ctx)
    full = snap(api, ctx.path("g0"), False)
    diffs = []
    try:
        for i in range(1, 4):
            wait_more(api.t)
            diffs.append(snap(api, ctx.path(f"g{i}"), True))
        r = api.shutdown()
        check(r.rc == 0, "source shutdown", r)
    finally:
        api.kill()
    # the working set, plus the guest's stack and report pages: far less than all
    check(full >= TOTAL_PAGES, f"full snapshot wrote {full} pages")
    for d in diffs:
        check(HOT_PAGES <= d < HOT_PAGES + 64, f"diff wrote {d} pages, the working set is {HOT_PAGES}")
    for i in range(1, 4):
        check(data_bytes(ctx.path(f"g{i}")) < data_bytes(ctx.path("g0")) // 8,
              f"g{i} holds {data_bytes(ctx.path(f'g{i}'))} bytes of data")

    sock = ctx.path("api-r.sock")
    t = spawn_tern(ctx, ["--restore", ctx.path("g3"), "--track-dirty", "--api-sock", sock],
                   reports="restored-tracked.txt")
    wait_socket(sock, t.p)
    p = Api.attach(ctx, sock, t)
    try:
        wait_passes(t, 2)
        d4 = snap(p, ctx.path("g4"), True)
        check(HOT_PAGES <= d4 < HOT_PAGES + 64, f"diff after restore wrote {d4} pages")
        r = p.shutdown()
        check(r.rc == 0, "restored tern shutdown", r)
    finally:
        p.kill()
    for i in (4, 2, 1, 0):
        check_restores(ctx, ctx.path(f"g{i}"), 10 + i)


def test_copy_mode_restores_a_diff(ctx):
    """--restore-memory copy reads the chain into shared RAM: same result."""
    api = tracked(ctx)
    try:
        snap(api, ctx.path("g0"), False)
        wait_more(api.t)
        snap(api, ctx.path("g1"), True)
        api.shutdown()
    finally:
        api.kill()
    check_restores(ctx, ctx.path("g1"), 1, extra=["--restore-memory", "copy"])
    check_restores(ctx, ctx.path("g0"), 2, extra=["--restore-memory", "copy"])
    r = run_tern(ctx, ["--restore", ctx.path("g1"), "--restore-memory", "mmap"], testdev=False)
    check(r.rc == 1 and "is not map or copy" in one_error_line(r), "bad --restore-memory", r)
    r = run_tern(ctx, ["--kernel", ctx.guest_elf, "--restore-memory", "copy"], testdev=False)
    check(r.rc == 1 and "goes with --restore" in one_error_line(r), "--restore-memory alone", r)


def test_diff_misuse_is_refused_and_the_vm_runs_on(ctx):
    api = Api(ctx, test=STAMP, memory="128M", ready="stamp pass=1")
    try:
        p = api.client("snapshot", "--path", ctx.path("d"), "--diff")
        check(p.returncode == 1 and "start tern with --track-dirty" in p.stderr, f"untracked: {p.stderr!r}")
        check(not os.path.exists(ctx.path("d")), "a refused diff created its directory")
        wait_more(api.t, 1)
        api.shutdown()
    finally:
        api.kill()

    api = tracked(ctx)
    try:
        p = api.client("snapshot", "--path", ctx.path("d"), "--diff")
        check(p.returncode == 1 and "take a full snapshot first" in p.stderr, f"no base: {p.stderr!r}")
        snap(api, ctx.path("g0"), False)
        snap(api, ctx.path("g1"), True)
        before = sorted(os.listdir(ctx.path("g0")))
        for target in ("g0", "g1"):
            p = api.client("snapshot", "--path", ctx.path(target), "--diff")
            check(p.returncode == 1 and "would replace a snapshot it depends on" in p.stderr,
                  f"diff into {target}: {p.stderr!r}")
        check(sorted(os.listdir(ctx.path("g0"))) == before, "the parent changed")
        check(api.client_ok("status")["state"] == "running", "the VM must keep running")
        wait_more(api.t, 1)
        # a full snapshot may replace anything: g1's parent is then gone
        snap(api, ctx.path("g0"), False)
        api.shutdown()
    finally:
        api.kill()
    r = run_tern(ctx, ["--restore", ctx.path("g1")], testdev=False)
    check(r.rc == 1 and "was replaced after the diff was taken" in one_error_line(r), "replaced parent", r)
    shutil.rmtree(ctx.path("g0"))
    r = run_tern(ctx, ["--restore", ctx.path("g1")], testdev=False)
    check(r.rc == 1 and "its parent" in one_error_line(r) and "cannot be used" in one_error_line(r),
          "missing parent", r)

    r = run_tern(ctx, ["--kernel", ctx.guest_elf, "--track-dirty", "--net",
                       f"vdpa-sim,socket={ctx.path('a.sock')},peer={ctx.path('b.sock')}"], testdev=False)
    check(r.rc == 1 and "diff snapshots of a VM with --net are not possible yet" in one_error_line(r),
          "--track-dirty with --net", r)


def test_failed_diff_loses_no_page(ctx):
    """A diff that fails (ENOSPC) keeps what it had collected: the next diff,
    taken while the guest is still paused and can write nothing new, must
    hold those pages, or the restore fails its page check."""
    mnt = ctx.path("small")
    os.mkdir(mnt)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt]).returncode != 0:
        from ternlib import Skip
        raise Skip("cannot mount a tmpfs (not root?)")
    try:
        api = tracked(ctx)
        try:
            snap(api, ctx.path("g0"), False)
            wait_more(api.t)
            st, body, _ = api.curl("PUT", "/vm/pause")
            check(st == 200, f"pause: {body}")
            p = api.client("snapshot", "--path", os.path.join(mnt, "d"), "--diff", "--no-resume")
            check(p.returncode == 1 and "No space left" in p.stderr, f"expected ENOSPC: {p.stderr!r}")
            check(api.client_ok("status")["state"] == "paused", "a failed snapshot must leave it paused")
            d = snap(api, ctx.path("g1"), True)
            check(d >= HOT_PAGES, f"the retried diff wrote only {d} pages")
            api.shutdown()
        finally:
            api.kill()
    finally:
        subprocess.run(["umount", "-l", mnt])
    check_restores(ctx, ctx.path("g1"), 1)
