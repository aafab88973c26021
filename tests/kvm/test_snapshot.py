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
            p = Api.attach(ctx, sock, t)
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


def echo_round(s, dev_path, n, tag, others=None):
    """Sends n frames to the VM and collects their echoes (loss-tolerant:
    what matters is that the device still moves frames both ways); frames
    that are not echoes go to others, if given."""
    import socket as so
    import struct
    mac = bytes.fromhex("525400ee0001")
    me = bytes.fromhex("525400dd0001")
    got = set()
    s.settimeout(0.2)
    for attempt in range(20):
        for i in range(n):
            if i in got:
                continue
            payload = struct.pack("<II", tag, i) + b"\0" * 40
            try:
                s.sendto(mac + me + b"\x88\xb5" + payload, dev_path)
            except OSError:
                pass
        try:
            while len(got) < n:
                f = s.recv(2048)
                if f[:6] == me and f[6:12] == mac and f[12:14] == b"\x88\xb5":
                    t, i = struct.unpack("<II", f[14:22])
                    if t == tag:
                        got.add(i)
                elif others is not None:
                    others.append(f)
        except so.timeout:
            pass
        if len(got) == n:
            return len(got)
    return len(got)


GUEST_ANNOUNCE = 1 << 21


def echo_snapshot_restore(ctx, opts="", others=None):
    """Runs net-echo on a socket wire, snapshots it, restores it on a new
    wire; returns (source reports, restored Run) after checking echoes."""
    import socket as so
    peer = ctx.path("peer.sock")
    s = so.socket(so.AF_UNIX, so.SOCK_DGRAM)
    s.bind(peer)
    dev1, dev2, snap = ctx.path("dev1.sock"), ctx.path("dev2.sock"), ctx.path("snap")
    try:
        api = Api(ctx, test="net-echo", ready="net echo ready",
                  extra=["--net", f"vdpa-sim,socket={dev1},peer={peer},mac=52:54:00:ee:00:01{opts}"])
        try:
            check(echo_round(s, dev1, 200, 1) == 200, "no echoes before the snapshot")
            out = api.client_ok("snapshot", "--path", snap)
            check(out["state"] == "running", f"snapshot: {out}")
            check(echo_round(s, dev1, 50, 2) == 50, "the source stopped echoing after its snapshot")
            source = api.t.reports()
            api.shutdown()
        finally:
            api.kill()
        t = spawn_tern(ctx, ["--restore", snap, "--net",
                             f"vdpa-sim,socket={dev2},peer={peer},mac=52:54:00:ee:00:01{opts}"], reports="r.txt")
        n = echo_round(s, dev2, 300, 3, others)
        if "features-off" not in opts:
            t.wait_report("net announce seen")
        t.send(b"q")
        r = t.finish()
        check(n == 300, f"restored VM echoed {n} of 300 frames", r)
        check(r.rc == 0 and any(x.startswith("net echo count=") for x in r.reports), "restored guest", r)
        check(not any(x.startswith("up ") for x in r.reports), "the restored guest booted afresh", r)
        return source, r
    finally:
        s.close()


def test_net_device_survives_snapshot_restore(ctx):
    """A VM with a virtio-net device on the software vDPA device echoes
    frames; snapshot it (the device is suspended, its ring indices saved),
    restore it in a new process with a new --net wire: it echoes again, and
    announces itself once (VIRTIO_NET_S_ANNOUNCE, acknowledged through the
    control queue, after which tern clears the bit)."""
    others = []
    source, r = echo_snapshot_restore(ctx, others=others)
    feats = [int(x.split("=")[1], 16) for x in source if x.startswith("net echo features=")]
    check(feats and feats[0] & GUEST_ANNOUNCE, f"GUEST_ANNOUNCE not negotiated: {source[:4]}")
    check("net announce seen" not in source, f"the source announced without moving: {source}")
    acks = [x for x in r.reports if x.startswith("net announce ack=")]
    check(acks == ["net announce ack=0 cleared=1"], f"announce after restore: {acks}", r)
    check(not any(f[12:14] == b"\x80\x35" for f in others), "tern sent a RARP for a guest that announces itself")


def test_no_announce_without_guest_announce(ctx):
    """With GUEST_ANNOUNCE withheld the restored guest never sees the bit,
    and its frames still flow; tern announces it instead, with a RARP from
    its MAC on the new wire."""
    others = []
    source, r = echo_snapshot_restore(ctx, f",features-off={GUEST_ANNOUNCE:#x}", others)
    mac = bytes.fromhex("525400ee0001")
    rarps = [f for f in others if f[12:14] == b"\x80\x35"]
    check(len(rarps) == 1 and rarps[0][:6] == b"\xff" * 6 and rarps[0][6:12] == mac and
          rarps[0][20:22] == b"\x00\x03" and rarps[0][22:28] == mac and rarps[0][32:38] == mac,
          f"one RARP (reverse request) from the guest's MAC expected: {[f[:42].hex() for f in rarps]}")
    feats = [int(x.split("=")[1], 16) for x in source if x.startswith("net echo features=")]
    check(feats and not feats[0] & GUEST_ANNOUNCE, f"GUEST_ANNOUNCE negotiated: {source[:4]}")
    check(not any(x.startswith("net announce") for x in r.reports), "announced without the feature", r)


def test_restore_needs_the_same_nets(ctx):
    from ternlib import run_tern, one_error_line
    import socket as so
    api = Api(ctx, test="net-echo", ready="net echo ready",
              extra=["--net", f"vdpa-sim,socket={ctx.path('d.sock')},peer={ctx.path('p.sock')}"])
    try:
        api.client_ok("snapshot", "--path", ctx.path("snap"))
        api.shutdown()
    finally:
        api.kill()
    r = run_tern(ctx, ["--restore", ctx.path("snap")], testdev=False)
    check(r.rc == 1 and "give as many --net options" in one_error_line(r), "restore without --net", r)


def test_sigkill_during_snapshot_never_leaves_a_partial_snapshot(ctx):
    """tern killed at points during a snapshot: the directory holds either
    the complete old snapshot or the complete new one, which restores and
    passes the page check (reliability target E3)."""
    import random
    import signal
    import subprocess
    import time
    snap = ctx.path("snap")
    rng = random.Random(1234)
    replaced = 0
    for point in range(10):
        api = Api(ctx, test="stamp mb=96", memory="128M", ready="stamp pass=1")
        try:
            if point == 0:
                api.client_ok("snapshot", "--path", snap)  # the first, complete one
            before = open(os.path.join(snap, "state"), "rb").read()
            client = subprocess.Popen([ctx.tern, "snapshot", "--api-sock", api.sock, "--path", snap],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.0, 0.08))
            api.t.p.send_signal(signal.SIGKILL)
            api.t.p.wait()
            client.wait(timeout=30)
        finally:
            api.kill()
        names = os.listdir(snap)
        mems = [n for n in names if n.startswith("memory.") and not n.endswith(".tmp")]
        replaced += open(os.path.join(snap, "state"), "rb").read() != before
        # whichever state file is there (old or new) must be whole and name
        # a memory file that is there: it restores and passes the page check
        t, _ = restore(ctx, snap, point)
        wait_passes(t, 1)
        t.send(b"q")
        r = t.finish()
        check(r.rc == 0, f"kill point {point}: the snapshot left behind does not restore ({names})", r)
        check(len(mems) >= 1, f"kill point {point}: no memory file ({names})")
    print(f"      {replaced} of 10 kills came after the new snapshot was in place")
