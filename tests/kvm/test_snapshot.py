"""Snapshots across processes, as a user takes them: curl pauses a running
page-stamp guest, snapshots it and resumes it; `tern run --restore` brings
the snapshot back in a new process, where the guest checks every page over
whole passes before it may exit 0; three generations of that."""
import json
import os

from ternlib import check, spawn_tern
from test_api import Api, wait_socket


def stamp_passes(t):
    return [r for r in t.reports() if r.startswith("stamp pass=")]


def wait_passes(t, n, timeout=60):
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(r.startswith("stamp error") for r in t.reports()):
            break
        if len(stamp_passes(t)) >= n:
            return
        time.sleep(0.02)
    check(False, f"guest made {len(stamp_passes(t))} passes, wanted {n}: {t.reports()[-5:]}")


def restore(ctx, snap, gen, api=False):
    args = ["--restore", snap]
    sock = ctx.path(f"api{gen}.sock")
    if api:
        args += ["--api-sock", sock]
    t = spawn_tern(ctx, args, reports=f"restore{gen}.txt")
    if api:
        wait_socket(sock, t.p)
    return t, sock


def test_curl_pause_snapshot_resume_restore(ctx):
    api = Api(ctx, test="stamp mb=32", cpus=2, memory="128M", ready="stamp pass=1")
    snap = ctx.path("snap")
    try:
        st, body, _ = api.curl("PUT", "/vm/pause")
        check(st == 200 and body == {"state": "paused"}, f"pause: {st} {body}")
        st, body, _ = api.curl("PUT", "/vm/snapshot", json.dumps({"path": snap, "resume": False}))
        check(st == 200 and body["state"] == "paused", f"snapshot: {st} {body}")
        st, body, _ = api.curl("PUT", "/vm/resume")
        check(st == 200 and body == {"state": "running"}, f"resume: {st} {body}")
        before = len(stamp_passes(api.t))
        wait_passes(api.t, before + 2)  # the source runs on after the snapshot
        r = api.shutdown()
        check(r.rc == 0, "source shutdown", r)
    finally:
        api.kill()
    t, _ = restore(ctx, snap, 1)
    wait_passes(t, 2)
    t.send(b"q")
    r = t.finish()
    check(r.rc == 0, "restored guest failed its page check", r)
    check(any(x.startswith("stamp ok") for x in r.reports), "no 'stamp ok'", r)
    check(not any(x.startswith("up ") for x in r.reports), "the restored guest booted afresh", r)


def test_three_generations_across_processes(ctx):
    api = Api(ctx, test="stamp mb=16", cpus=2, memory="96M", ready="stamp pass=1")
    try:
        api.client_ok("snapshot", "--path", ctx.path("g0"))
        api.shutdown()
    finally:
        api.kill()
    for gen in range(1, 4):
        t, sock = restore(ctx, ctx.path(f"g{gen - 1}"), gen, api=True)
        wait_passes(t, 2)
        if gen < 3:
            p = Api.__new__(Api)
            p.ctx, p.sock, p.t = ctx, sock, t
            p.client_ok("snapshot", "--path", ctx.path(f"g{gen}"))
            r = p.shutdown()
            check(r.rc == 0, f"generation {gen} shutdown", r)
        else:
            t.send(b"q")
            r = t.finish()
            check(r.rc == 0 and any(x.startswith("stamp ok") for x in r.reports),
                  "third-generation guest failed its page check", r)
    # each generation replaced nothing it should not have
    for gen in range(0, 3):
        files = sorted(os.listdir(ctx.path(f"g{gen}")))
        check(files[-1] == "state" and len(files) == 2 and files[0].startswith("memory."),
              f"snapshot dir g{gen} holds {files}")


def test_snapshot_replaces_old_one_atomically(ctx):
    """A second snapshot into the same directory replaces the first whole:
    one state file and exactly one memory file, never a .tmp left over."""
    api = Api(ctx, test="stamp mb=8", memory="64M", ready="stamp pass=1")
    snap = ctx.path("snap")
    try:
        api.client_ok("snapshot", "--path", snap)
        first = sorted(os.listdir(snap))
        api.client_ok("snapshot", "--path", snap)
        second = sorted(os.listdir(snap))
        api.shutdown()
    finally:
        api.kill()
    check(len(first) == 2 and len(second) == 2 and first != second, f"{first} -> {second}")
    check(not any(f.endswith(".tmp") for f in second), f"temporary files left: {second}")


def test_snapshot_to_full_disk_keeps_vm_and_old_snapshot(ctx):
    """ENOSPC while writing (a 32 MiB tmpfs, 64 MiB to write): a clean
    error, the VM still runs, the previous snapshot there is intact."""
    import subprocess
    mnt = ctx.path("small")
    os.mkdir(mnt)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", mnt]).returncode != 0:
        from ternlib import Skip
        raise Skip("cannot mount a tmpfs (not root?)")
    try:
        api = Api(ctx, test="stamp mb=8", memory="64M", ready="stamp pass=1")
        try:
            snap = os.path.join(mnt, "snap")
            api.client_ok("snapshot", "--path", snap)  # 8 MiB working set: fits
            old = {f: open(os.path.join(snap, f), "rb").read() for f in os.listdir(snap) if f == "state"}
            # grow the working set beyond the tmpfs, then snapshot again
            filler = os.path.join(mnt, "filler")
            with open(filler, "wb") as f:
                f.write(b"\1" * (28 << 20))
            p = api.client("snapshot", "--path", snap)
            check(p.returncode == 1 and "No space left" in p.stderr, f"expected ENOSPC: {p.stderr!r}")
            check(api.client_ok("status")["state"] == "running", "the VM must keep running")
            check(open(os.path.join(snap, "state"), "rb").read() == old["state"], "old snapshot damaged")
            check(not [f for f in os.listdir(snap) if f.endswith(".tmp")], "temporary files left behind")
            os.unlink(filler)
            api.client_ok("snapshot", "--path", snap)  # space freed: works again
            api.shutdown()
        finally:
            api.kill()
        t, _ = restore(ctx, os.path.join(mnt, "snap"), 1)
        wait_passes(t, 2)
        t.send(b"q")
        r = t.finish()
        check(r.rc == 0, "restore after the retried snapshot failed", r)
    finally:
        subprocess.run(["umount", "-l", mnt])


def test_restore_refusals(ctx):
    from ternlib import run_tern, one_error_line
    api = Api(ctx, test="stamp mb=4", memory="64M", ready="stamp pass=1")
    snap = ctx.path("snap")
    try:
        api.client_ok("snapshot", "--path", snap)
        api.shutdown()
    finally:
        api.kill()
    mem = [f for f in os.listdir(snap) if f.startswith("memory.")][0]
    path = os.path.join(snap, mem)
    os.truncate(path, os.path.getsize(path) - 4096)
    r = run_tern(ctx, ["--restore", snap], testdev=False)
    check(r.rc == 1 and "the snapshot needs" in one_error_line(r), "short memory file", r)
    os.unlink(path)
    r = run_tern(ctx, ["--restore", snap], testdev=False)
    check(r.rc == 1 and "cannot open snapshot memory" in one_error_line(r), "missing memory file", r)
