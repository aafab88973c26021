"""Faults during live migration (reliability targets D1-D4, D7), through
a man in the middle (migproxy.py) between two tern processes: the
connection cut at random byte offsets and at every phase boundary, the
destination SIGKILLed at ten points, the source SIGKILLed, single bits
flipped in flight, a black hole. After every fault before the hand-over the
source VM runs on and its guest passes its page check; no fault ever leaves
two running copies; and a later clean migration succeeds."""
import os
import random
import signal
import struct
import time

import migproxy as mp
from migratelib import (destination, finish_guest, free_port, migrate, never_ran, never_ran_or_waits, source,
                        still_running)
from ternlib import TestFailure, check

SEED = 7


def via_proxy(ctx, name, tcp=False, **faults):
    """A destination and a proxy in front of it, on UNIX sockets or on
    loopback TCP; returns (dst, proxy)."""
    if tcp:
        port = free_port()
        dst = destination(ctx, name, f"tcp:127.0.0.1:{port}")
        return dst, mp.Proxy(("tcp", free_port()), ("tcp", port), **faults)
    dpath = ctx.path(f"{name}.mig")
    dst = destination(ctx, name, f"unix:{dpath}")
    proxy = mp.Proxy(("unix", ctx.path(f"{name}.px")), ("unix", dpath), **faults)
    return dst, proxy


def failed_before_commit(src, dst, what):
    """The source failed, resumed and passes its page check; the
    destination exited 1 without running the guest (or, broken before it
    admitted the source, refused it and waits on)."""
    out = src.migration()
    check(out["state"] == "failed", f"{what}: the migration is {out['state']}: {out}")
    still_running(src, 1, what)
    never_ran_or_waits(dst, what)


def first_pass_bytes(ctx, src, tcp=False):
    """Bytes the source sends up to the end of its first pass (all of RAM),
    the part of the stream that every run has, from a dry run whose READY
    never arrives (so the source resumes). Later passes vary in number and
    size from run to run; record boundaries cover them."""
    dst, px = via_proxy(ctx, "dry", tcp, on_record=lambda d, t, i: "drop-cut" if (d, t) == ("down", mp.READY) else None)
    rc, out, err = migrate(src, px.addr)
    check(rc == 1, f"dry run: {err}")
    failed_before_commit(src, dst, "dry run")
    check(px.types("up")[-1] == mp.END, f"dry run: the source sent {px.types('up')[-3:]}")
    first = src.migration()["passes"][0]["bytes"]
    check(0 < first < px.up_bytes, f"dry run: first pass {first} of {px.up_bytes} bytes")
    return first


def open_fds(src, want=None):
    """The source's open descriptors; given the count expected, waits up
    to 2 s for it, so that the socket of an API request just answered (its
    server closes it after the reply) is not taken for a leak, while a
    leaked descriptor, which stays, still fails the comparison."""
    deadline = time.monotonic() + 2
    while True:
        n = len(os.listdir(f"/proc/{src.t.p.pid}/fd"))
        if want is None or n == want or time.monotonic() > deadline:
            return n
        time.sleep(0.02)


def test_connection_cut_at_random_offsets_and_boundaries(ctx):
    """The TCP connection cut at 200 places: random offsets of the first
    pass, every phase boundary, and the stream's header. Each time the
    source fails, runs on and holds exactly the descriptors it held before;
    its guest passes its page check every tenth cut and at the end. (The
    ASan build, several times slower, cuts at 50 random offsets.)"""
    rng = random.Random(SEED)
    src = source(ctx)
    random_cuts = 50 if ctx.asan else 191
    try:
        length = first_pass_bytes(ctx, src, tcp=True)
        fds = open_fds(src)
        offsets = sorted(rng.randrange(0, length) for _ in range(random_cuts))
        for n, off in enumerate(offsets):
            dst, px = via_proxy(ctx, f"cut{n}", tcp=True, cut_at=off)
            rc, out, err = migrate(src, px.addr)
            check(rc == 1, f"cut at byte {off} of {length}: the migration succeeded")
            check(src.migration()["state"] == "failed", f"cut at byte {off}: {src.migration()}")
            if n % 10 == 9:
                failed_before_commit(src, dst, f"cut at byte {off}")
            else:
                check(src.status()["state"] == "running", f"cut at byte {off}: the source is {src.status()}")
                dst.kill()
            check(open_fds(src, fds) == fds, f"cut at byte {off}: the source holds {open_fds(src, fds)} descriptors, "
                                        f"{fds} before")
        # every phase boundary before the hand-over
        boundaries = [("up", mp.CONFIG, "cut"), ("down", mp.ACCEPT, "drop-cut"), ("up", mp.RAM, "cut"),
                      ("up", mp.PASS, "cut"), ("up", mp.STATE, "cut"), ("up", mp.END, "cut"),
                      ("down", mp.READY, "drop-cut")]
        for n, (way, rtype, act) in enumerate(boundaries):
            dst, px = via_proxy(ctx, f"edge{n}", tcp=True,
                                on_record=lambda d, t, i, w=way, rt=rtype, a=act: a if (d, t) == (w, rt) else None)
            rc, out, err = migrate(src, px.addr)
            check(rc == 1, f"cut at {way} record {rtype}: the migration succeeded")
            failed_before_commit(src, dst, f"cut at {way} record {rtype}")
            check(open_fds(src, fds) == fds, f"cut at {way} record {rtype}: {open_fds(src, fds)} descriptors, {fds} before")
        for off in (0, 16):  # before and right after the stream header
            dst, px = via_proxy(ctx, f"head{off}", tcp=True, cut_at=off)
            rc, out, err = migrate(src, px.addr)
            failed_before_commit(src, dst, f"cut at byte {off}")
            check(open_fds(src, fds) == fds, f"cut at byte {off}: {open_fds(src, fds)} descriptors, {fds} before")
        # and then a clean migration to a fresh destination
        port = free_port()
        dst = destination(ctx, "final", f"tcp:127.0.0.1:{port}")
        rc, out, err = migrate(src, f"tcp:127.0.0.1:{port}")
        cuts = len(offsets) + len(boundaries) + 2
        check(rc == 0, f"the clean migration after {cuts} cuts: {err}")
        src.t.finish()
        finish_guest(dst, "the final destination")
    finally:
        src.kill()
    print(f"# TCP: first pass of {length} bytes cut at {len(offsets)} random offsets and {len(boundaries) + 2} "
          f"boundaries ({cuts} cuts); the source's descriptors the same after each")


def test_cut_after_go_never_runs_two_copies(ctx):
    """Past the commit the source cannot know whether the destination got
    GO: it stays paused. GO lost: neither runs (the operator resumes the
    source); DONE lost: only the destination runs."""
    src = source(ctx, "src-go")
    try:
        dst, px = via_proxy(ctx, "go", on_record=lambda d, t, i: "drop-cut" if (d, t) == ("up", mp.GO) else None)
        rc, out, err = migrate(src, px.addr)
        check(rc == 1 and "stays paused" in err, f"GO lost: {err!r}")
        check(src.status()["state"] == "paused", "GO lost: the source must stay paused")
        never_ran(dst, "GO lost")
        src.api.client_ok("resume")  # the operator knows the destination is gone
        still_running(src, 1)

        dst, px = via_proxy(ctx, "done", on_record=lambda d, t, i: "drop-cut" if (d, t) == ("down", mp.DONE) else None)
        rc, out, err = migrate(src, px.addr)
        check(rc == 1 and "stays paused" in err, f"DONE lost: {err!r}")
        check(src.status()["state"] == "paused", "DONE lost: the source must stay paused")
        finish_guest(dst, "the destination whose DONE was lost")
        src.api.client_ok("shutdown")
    finally:
        src.kill()


def test_failed_migration_leaves_a_paused_source_paused(ctx):
    """A source paused before the migration by its operator is not resumed
    by a migration that fails at or after the stop; one left paused by a
    hand-over whose GO was lost refuses a new migration: only its operator
    resumes it."""
    src = source(ctx, "src-p")
    try:
        src.api.client_ok("pause")
        dst, px = via_proxy(ctx, "p1", on_record=lambda d, t, i: "drop-cut" if (d, t) == ("down", mp.READY) else None)
        rc, out, err = migrate(src, px.addr)
        check(rc == 1, f"READY lost: {err!r}")
        check(src.migration()["state"] == "failed", f"READY lost: {src.migration()}")
        check(src.status()["state"] == "paused", "the operator paused the source: a failed migration must not resume it")
        never_ran(dst, "READY lost")
        src.api.client_ok("resume")
        still_running(src, 1)

        # GO lost leaves it paused and unresolved: no new migration may
        # start from it (its guest may run at the first destination) until
        # its operator settles it
        dst, px = via_proxy(ctx, "p2", on_record=lambda d, t, i: "drop-cut" if (d, t) == ("up", mp.GO) else None)
        rc, out, err = migrate(src, px.addr)
        check(rc == 1 and "stays paused" in err, f"GO lost: {err!r}")
        never_ran(dst, "GO lost")
        rc, out, err = migrate(src, f"unix:{ctx.path('p3.mig')}")
        check(rc == 1 and "hand-over is unresolved" in err, f"a migration after GO lost: {err!r}")
        check(src.status()["state"] == "paused", "a source left paused by a lost GO was resumed")
        src.api.client_ok("resume")
        still_running(src, 1)
        src.api.client_ok("shutdown")
    finally:
        src.kill()


def test_destination_stopped_before_go_says_never_ran(ctx):
    """The destination is told to stop (SIGTERM) after READY, while the
    source's GO is on its way: it never starts the guest and answers "never
    ran" instead of DONE, so the source, which has committed, resumes by
    itself instead of staying paused for a person. Without that answer the
    source could only stay paused."""
    src = source(ctx, "src-nr")
    holder = {}

    def hook(d, t, i):
        if (d, t) == ("up", mp.GO):
            os.kill(holder["pid"], signal.SIGTERM)
            time.sleep(0.5)  # the signal ends the destination's wait before GO arrives
        return None

    try:
        dst, px = via_proxy(ctx, "nr", on_record=hook)
        holder["pid"] = dst.t.p.pid
        rc, out, err = migrate(src, px.addr)
        check(rc == 1 and "stopped before it started the guest" in err, f"never ran: {err!r}")
        check(mp.GO in px.types("up"), f"the source never sent GO: {px.types('up')[-3:]}")
        check(src.migration()["state"] == "failed", f"{src.migration()}")
        never_ran(dst, "stopped before GO")
        still_running(src, 1)  # resumed on its own
        src.api.client_ok("shutdown")
    finally:
        src.kill()


def test_destination_killed_at_ten_points(ctx):
    src = source(ctx)
    points = [("up", mp.CONFIG, 1), ("down", mp.ACCEPT, 1), ("up", mp.RAM, 1), ("up", mp.RAM, 10),
              ("up", mp.PASS, 1), ("up", mp.PASS, 2), ("up", mp.STATE, 1), ("up", mp.END, 1), ("down", mp.READY, 1)]
    try:
        for n, (way, rtype, nth) in enumerate(points):
            seen = {"n": 0}
            holder = {}

            def hook(d, t, i, way=way, rtype=rtype, nth=nth, seen=seen, holder=holder):
                if (d, t) == (way, rtype):
                    seen["n"] += 1
                    if seen["n"] == nth:
                        os.kill(holder["pid"], signal.SIGKILL)
                        return "drop-cut" if d == "down" else "cut"
                return None

            dst, px = via_proxy(ctx, f"kill{n}", on_record=hook)
            holder["pid"] = dst.t.p.pid
            rc, out, err = migrate(src, px.addr)
            check(rc == 1, f"destination killed at {way} {rtype} #{nth}: the migration succeeded")
            check(src.migration()["state"] == "failed", f"kill at {way} {rtype} #{nth}")
            still_running(src, 1)
            r = dst.t.finish()
            check(r.rc == -signal.SIGKILL, f"the destination was killed at {way} {rtype} #{nth}", r)
        # the tenth: killed after GO went through; the source has committed
        # and stays paused: no copy runs, never two
        holder = {}
        dst, px = via_proxy(ctx, "kill-go", on_record=lambda d, t, i: (os.kill(holder["pid"], signal.SIGKILL), "cut")[1]
                            if (d, t) == ("up", mp.GO) else None)
        holder["pid"] = dst.t.p.pid
        rc, out, err = migrate(src, px.addr)
        check(rc == 1 and "stays paused" in err, f"killed after GO: {err!r}")
        check(src.status()["state"] == "paused", "killed after GO: the source must stay paused")
        src.api.client_ok("resume")
        finish_guest(src, "the source after ten destination kills")
    finally:
        src.kill()


def test_source_killed_destination_never_runs(ctx):
    src = source(ctx, "src-k")
    holder = {"pid": src.t.p.pid}
    dst, px = via_proxy(ctx, "dst-k", on_record=lambda d, t, i: (os.kill(holder["pid"], signal.SIGKILL), None)[1]
                        if (d, t) == ("up", mp.PASS) else None)
    try:
        migrate(src, px.addr)
        r = never_ran(dst, "source killed")
        check("closed by the peer" in r.stderr, "the destination says the source went away", r)
    finally:
        src.kill()


def test_bit_flips_in_flight_are_refused(ctx):
    rng = random.Random(SEED + 1)
    src = source(ctx)
    try:
        length = first_pass_bytes(ctx, src)
        for n in range(20):
            off, bit = rng.randrange(0, length), rng.randrange(8)
            dst, px = via_proxy(ctx, f"flip{n}", flip_at=off, flip_bit=bit)
            rc, out, err = migrate(src, px.addr)
            check(rc == 1, f"bit {bit} of byte {off} flipped: the migration succeeded")
            failed_before_commit(src, dst, f"bit {bit} of byte {off} flipped")
        finish_guest(src, "the source after 20 corrupted streams")
    finally:
        src.kill()


def test_black_hole_times_out(ctx):
    """The destination goes silent without closing anything: the source
    notices within its timeout and runs on."""
    src = source(ctx)
    try:
        length = first_pass_bytes(ctx, src)
        dst, px = via_proxy(ctx, "hole", hole_at=length // 2)
        t0 = time.monotonic()
        rc, out, err = migrate(src, px.addr, "--timeout-ms", "1000")
        took = time.monotonic() - t0
        check(rc == 1 and "timed out" in err, f"black hole: {err!r}")
        if took > 1 + 5:
            raise TestFailure(f"the source took {took:.1f} s to notice a 1 s black hole")
        still_running(src)
        dst.kill()
        finish_guest(src, "the source after a black hole")
    finally:
        src.kill()


def test_destination_sends_nothing_before_go(ctx):
    """Until GO a destination only stages its devices: one whose GO is lost
    has sent no frame and announced nothing on its wire (here the RARP tern
    sends for a guest without GUEST_ANNOUNCE). The same migration, GO
    arriving, announces the guest once from the new wire."""
    import socket as so
    from migratelib import ECHO_MAC, Tern
    from test_snapshot import GUEST_ANNOUNCE, echo_round
    peer = ctx.path("peer.sock")
    s = so.socket(so.AF_UNIX, so.SOCK_DGRAM)
    s.bind(peer)
    s.settimeout(0.5)
    net = lambda dev: ["--net", f"vdpa-sim,socket={ctx.path(dev)},peer={peer},mac={ECHO_MAC},"
                                f"features-off={GUEST_ANNOUNCE:#x}"]
    ts = []

    def frames_from(dev):
        got = []
        try:
            while True:
                f, addr = s.recvfrom(65536)
                if addr == ctx.path(dev):
                    got.append(f)
        except (BlockingIOError, so.timeout):
            return got

    try:
        src = Tern(ctx, "src", ["--kernel", ctx.guest_elf, "--memory", "64M", "--cmdline", "test=net-echo"] +
                   net("dev1.sock"))
        ts.append(src)
        src.t.wait_report("net echo ready")
        check(echo_round(s, ctx.path("dev1.sock"), 20, 1) == 20, "no echoes before the migration")
        dpath = ctx.path("g.mig")
        dst = destination(ctx, "dst", f"unix:{dpath}", net("dev2.sock"))
        ts.append(dst)
        px = mp.Proxy(("unix", ctx.path("g.px")), ("unix", dpath),
                      on_record=lambda d, t, i: "drop-cut" if (d, t) == ("up", mp.GO) else None)
        rc, out, err = migrate(src, px.addr)
        check(rc == 1 and "stays paused" in err, f"GO lost: {err!r}")
        never_ran(dst, "GO lost")
        sent = frames_from("dev2.sock")
        check(not sent, f"the destination whose GO was lost sent {len(sent)} frames: "
                        f"{[f[:42].hex() for f in sent]}")
        src.api.client_ok("resume")
        dpath = ctx.path("g2.mig")
        dst2 = destination(ctx, "dst2", f"unix:{dpath}", net("dev3.sock"))
        ts.append(dst2)
        rc, out, err = migrate(src, f"unix:{dpath}")
        check(rc == 0, f"migrate: {err}")
        rarps = [f for f in frames_from("dev3.sock") if f[12:14] == b"\x80\x35"]
        check(len(rarps) == 1, f"one RARP from the destination that got GO, not {len(rarps)}")
        dst2.t.send(b"q")
        dst2.t.finish()
    finally:
        s.close()
        for x in ts:
            x.kill()


def test_go_lost_device_frozen_until_resumed(ctx):
    """GO lost with a network device: while the source stays paused its
    device moves no frame (two copies must never both answer on the wire);
    the operator's resume brings the device back with the vCPUs, where it
    echoes again. (Before, the resume ran the vCPUs on a device left
    frozen, and its control queue never answered the guest again.)"""
    import socket as so
    from migratelib import ECHO_MAC, echo_source, finish_echo
    from test_snapshot import echo_round
    peer = ctx.path("peer.sock")
    s = so.socket(so.AF_UNIX, so.SOCK_DGRAM)
    s.bind(peer)
    dev1, dev2 = ctx.path("dev1.sock"), ctx.path("dev2.sock")
    mac = f"mac={ECHO_MAC}"
    src = dst = None
    try:
        src = echo_source(ctx, dev1, peer)
        check(echo_round(s, dev1, 50, 1) == 50, "no echoes before the migration")
        dpath = ctx.path("go.mig")
        dst = destination(ctx, "dst", f"unix:{dpath}", ["--net", f"vdpa-sim,socket={dev2},peer={peer},{mac}"])
        px = mp.Proxy(("unix", ctx.path("go.px")), ("unix", dpath),
                      on_record=lambda d, t, i: "drop-cut" if (d, t) == ("up", mp.GO) else None)
        rc, out, err = migrate(src, px.addr)
        check(rc == 1 and "stays paused" in err, f"GO lost: {err!r}")
        check(src.status()["state"] == "paused", "GO lost: the source must stay paused")
        never_ran(dst, "GO lost")
        # a paused guest echoes nothing either way: the device's own count
        # of frames delivered shows whether it is frozen (not echo_round:
        # it retries for long, and a frozen device's full socket makes
        # every send wait)
        rx0 = src.api.client_ok("info")["net"][0]["rx_frames"]
        s.setblocking(False)

        def burst(tag):
            for i in range(20):
                try:
                    s.sendto(bytes.fromhex("525400ee0001525400dd000188b5") + struct.pack("<II", tag, i) + b"\0" * 40,
                             dev1)
                except OSError:
                    pass
        burst(2)
        s.settimeout(1.0)
        echoed = 0
        try:
            while True:
                f = s.recv(2048)
                echoed += f[12:14] == b"\x88\xb5" and struct.unpack("<I", f[14:18])[0] == 2
        except so.timeout:
            pass
        check(echoed == 0, f"the paused source's device echoed {echoed} of 20 frames")
        rx1 = src.api.client_ok("info")["net"][0]["rx_frames"]
        check(rx0 >= 50 and rx1 == rx0, f"the paused source's device delivered {rx1 - rx0} of 20 frames to its guest "
              "(it must stay frozen until the resume)")
        # a plain snapshot (resume by default) runs neither the vCPUs nor
        # the device, and no new migration starts from here
        out = src.api.client_ok("snapshot", "--path", ctx.path("unresolved.snap"))
        check(out["state"] == "paused" and src.status()["state"] == "paused",
              f"the unresolved source after a snapshot: {out}, {src.status()}")
        burst(3)
        time.sleep(0.5)
        rx2 = src.api.client_ok("info")["net"][0]["rx_frames"]
        check(rx2 == rx0, f"after the snapshot the source's device delivered {rx2 - rx0} frames: it must stay frozen")
        p = src.api.client("migrate", "--to", f"unix:{ctx.path('again.mig')}")
        check(p.returncode == 1 and "hand-over is unresolved" in p.stderr, f"a new migration: {p.stderr!r}")
        src.api.client_ok("resume")
        got = echo_round(s, dev1, 100, 3)
        check(got == 100, f"after the resume the source echoed {got} of 100 frames")
        finish_echo(src, "the source's guest")
    finally:
        s.close()
        for x in (src, dst):
            if x:
                x.kill()
