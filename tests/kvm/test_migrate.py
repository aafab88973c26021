"""Live migration between two tern processes (docs/migration.md): the
page-stamp guest (index, generation and CRC on every page) moves over
loopback TCP and UNIX sockets and checks every page on the destination;
idle and busy guests; twenty migrations in a row; refusals; cancel in every
state of the source's state machine."""
import json
import os
import signal
import socket
import struct
import subprocess
import time

from migratelib import (ECHO_MAC, destination, echo_source, finish_echo, finish_guest, free_port, migrate, still_waiting,
                        never_ran, source, still_running, wait_state)
from ternlib import check, one_error_line, run_tern


def check_result(out, what):
    check(out is not None and out["state"] == "completed", f"{what}: {out}")
    check(out["downtime_ms"] >= 0 and out["total_ms"] >= out["downtime_ms"], f"{what}: times {out}")
    check(len(out["passes"]) >= 2 and out["passes"][0]["pages"] > 0, f"{what}: passes {out['passes']}")
    check(out["pages_sent"] == sum(p["pages"] for p in out["passes"]), f"{what}: page counts {out}")


def test_busy_and_idle_guests_over_tcp(ctx):
    # hot=16: every page rewritten all the time; hot=0: written once, then
    # only read; and the busy one again with KVM's dirty ring (512 entries:
    # it fills many times a pass) instead of its dirty bitmap
    for hot, extra in (("16", []), ("0", []), ("16", ["--dirty-ring", "512"])):
        port = free_port()
        src = source(ctx, f"src{hot}{len(extra)}", stamp=f"stamp mb=16 hot={hot}", extra=extra)
        dst = destination(ctx, f"dst{hot}{len(extra)}", f"tcp:127.0.0.1:{port}")
        try:
            rc, out, err = migrate(src, f"tcp:127.0.0.1:{port}")
            check(rc == 0, f"migrate (hot={hot}): {err}")
            check_result(out, f"hot={hot}")
            r = src.t.finish()
            check(r.rc == 0, "the source must exit 0 after the hand-over", r)
            r = finish_guest(dst, f"hot={hot} destination")
            check(not any(x.startswith("up ") for x in r.reports), "the destination booted afresh", r)
            check(r.reports[0].startswith("stamp pass="), f"the guest went on where it was: {r.reports[:2]}", r)
        finally:
            src.kill()
            dst.kill()


def test_unix_socket_bandwidth_limit_and_progress(ctx):
    addr = f"unix:{ctx.path('mig.sock')}"
    src = source(ctx, stamp="stamp mb=24 hot=1")
    dst = destination(ctx, "dst", addr)
    try:
        # 24 MiB at 16 MiB/s cannot take less than a second and a half
        t0 = time.monotonic()
        rc, out, err = migrate(src, addr, "--bandwidth", "16M", "--downtime-ms", "20")
        took = time.monotonic() - t0
        check(rc == 0, f"migrate: {err}")
        check_result(out, "unix")
        check(out["bytes_sent"] >= 24 << 20 and took >= 1.4, f"{out['bytes_sent']} bytes in {took:.2f} s at 16 MiB/s")
        # the progress line names each pass while not on a terminal
        check("pass 1" in err and "completed" in err, f"progress output: {err!r}")
        finish_guest(dst, "destination")
    finally:
        src.kill()
        dst.kill()


def test_twenty_migrations_in_a_row(ctx):
    vm = source(ctx, "m0", stamp="stamp mb=8 hot=2")
    downtimes = []
    try:
        for i in range(1, 21):
            addr = f"unix:{ctx.path(f'm{i}.mig')}" if i % 2 else f"tcp:127.0.0.1:{free_port()}"
            nxt = destination(ctx, f"m{i}", addr)
            rc, out, err = migrate(vm, addr)
            check(rc == 0, f"migration {i}: {err}")
            downtimes.append(out["downtime_ms"])
            r = vm.t.finish()
            check(r.rc == 0, f"source of migration {i} exited {r.rc}", r)
            vm = nxt
            still_running(vm, 1)
        r = finish_guest(vm, "the twentieth destination")
    finally:
        vm.kill()
    print(f"# 20 migrations: downtime ms {sorted(downtimes)}")


def test_refusals_leave_the_source_running(ctx):
    src = source(ctx)
    addr = f"unix:{ctx.path('s.mig')}"
    try:
        # nothing listens there
        rc, out, err = migrate(src, f"tcp:127.0.0.1:{free_port()}")
        check(rc == 1 and "cannot connect" in err and "failed" in err, f"no destination: {err!r}")
        still_running(src)
        # a malformed address is refused at once
        rc, out, err = migrate(src, "tcp:nowhere")
        check(rc == 1 and "lacks a port" in err and "HTTP 400" in err, f"bad address: {err!r}")
        # the destination was given a network device the source lacks:
        # refused before any memory, with the destination's reason
        naddr = f"unix:{ctx.path('n.mig')}"
        dst = destination(ctx, "dst-net", naddr, ["--net", f"vdpa-sim,socket={ctx.path('a')},peer={ctx.path('b')}"])
        rc, out, err = migrate(src, naddr)
        check(rc == 1 and "refused the migration" in err and "network devices" in err, f"config mismatch: {err!r}")
        still_waiting(dst, "config mismatch", "network devices")
        still_running(src)
        # the API's own checks on the body
        st, body, _ = src.api.curl("PUT", "/vm/migrate", json.dumps({"to": addr, "downtime_ms": 0}))
        check(st == 400 and "downtime_ms" in body["error"], f"downtime 0: {st} {body}")
        st, body, _ = src.api.curl("PUT", "/vm/migrate", json.dumps({"to": 5}))
        check(st == 400 and "'to'" in body["error"], f"to: 5: {st} {body}")
        st, body, _ = src.api.curl("PUT", "/vm/migrate", json.dumps({"to": addr, "bandwidth": "fast"}))
        check(st == 400 and "bandwidth" in body["error"], f"bandwidth: {st} {body}")
        st, body, _ = src.api.curl("PUT", "/vm/migrate/cancel")
        check(st == 409 and "no migration is in progress" in body["error"], f"cancel with none: {st} {body}")
        # and after all that, a migration works
        dst = destination(ctx, "dst-ok", addr)
        rc, out, err = migrate(src, addr)
        check(rc == 0, f"a good migration after the refusals: {err}")
        src.t.finish()
        finish_guest(dst, "destination after refusals")
    finally:
        src.kill()


def test_destination_refuses_bad_streams(ctx):
    """Peers that are not a tern source, or a newer one, and a silent one
    that holds its connection open: each refused with the reason logged
    (and sent), nothing applied, and the destination goes on waiting; the
    real source then migrates to it."""
    cases = [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "not a tern migration stream"),
        (None, "version 2.0 is not supported"),
        (b"TERNMIGR" + b"\0" * 8, "header is corrupt"),
    ]
    path = ctx.path("bad.mig")
    dst = destination(ctx, "bad", f"unix:{path}")
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.connect(path)  # says nothing: holds one admission slot, no more
    for i, (data, want) in enumerate(cases):
        if data is None:
            head = b"TERNMIGR" + struct.pack("<HH", 2, 0)
            data = head + struct.pack("<I", crc32c(head))
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        s.sendall(data)
        s.settimeout(10)
        answer = s.recv(4096)
        s.close()
        check(want.encode() in answer, f"peer {i} was not told {want!r}: {answer!r}")
        check(dst.alive() and dst.status()["state"] == "incoming", f"peer {i} ended the wait")
    src = source(ctx)
    try:
        rc, out, err = migrate(src, f"unix:{path}")
        check(rc == 0, f"the real source after three strangers and a silent one: {err}")
        src.t.finish()
        finish_guest(dst, "destination after strangers")
    finally:
        silent.close()
        src.kill()
        dst.kill()
    r = run_tern(ctx, ["--kernel", ctx.guest_elf, "--dirty-ring", "100"], testdev=False)
    check(r.rc == 1 and "is not a power of two" in one_error_line(r), "bad --dirty-ring", r)
    r = run_tern(ctx, ["--incoming", "tcp:127.0.0.1", "--test-device"], testdev=False)
    check(r.rc == 1 and "lacks a port" in one_error_line(r), "bad --incoming", r)
    r = run_tern(ctx, ["--incoming", f"unix:{ctx.path('x')}", "--kernel", ctx.guest_elf], testdev=False)
    check(r.rc == 1 and "--incoming takes the machine from the source" in one_error_line(r), "--incoming --kernel", r)


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def test_cancel_in_every_state(ctx):
    """Cancel is honoured up to the hand-over and refused from the commit
    on; every cancelled migration leaves the source running; the
    destination exits without having run the guest, or, cancelled before
    it admitted the source, goes on waiting."""
    for st in ("setup", "active", "stopped", "handover"):
        src = source(ctx, f"src-{st}", env={"TERN_TEST_FAULTS": f"migrate-stall={st}"})
        addr = f"unix:{ctx.path(f'{st}.mig')}"
        dst = destination(ctx, f"dst-{st}", addr)
        try:
            rc, out, err = migrate(src, addr, "--no-wait")
            check(rc == 0, f"start ({st}): {err}")
            wait_state(src, [st])
            # nothing else may pause or resume the VM meanwhile
            p = src.api.client("pause")
            check(p.returncode == 1 and "a migration is in progress" in p.stderr, f"pause during {st}: {p.stderr!r}")
            out = src.api.client_ok("migrate-cancel")
            check(out["state"] == "cancelled" and "cancelled" in out["error"], f"cancel in {st}: {out}")
            still_running(src)
            if st == "setup":  # before the destination admitted it: it waits on
                still_waiting(dst, "cancelled in setup", "closed by the peer")
            else:
                never_ran(dst, f"cancelled in {st}")
            p = src.api.client("migrate-cancel")
            check(p.returncode == 1 and "no migration is in progress" in p.stderr, f"second cancel: {p.stderr!r}")
            finish_guest(src, f"source cancelled in {st}")
        finally:
            src.kill()
            dst.kill()
    # from the commit on, cancel is refused and the migration completes
    src = source(ctx, "src-committed", env={"TERN_TEST_FAULTS": "migrate-stall=committed"})
    addr = f"unix:{ctx.path('committed.mig')}"
    dst = destination(ctx, "dst-committed", addr)
    try:
        rc, out, err = migrate(src, addr, "--no-wait")
        wait_state(src, ["committed"])
        p = src.api.client("migrate-cancel")
        check(p.returncode == 1 and "too late to cancel" in p.stderr, f"cancel when committed: {p.stderr!r}")
        wait_state(src, ["completed"])  # reading the result lets the source exit
        check(src.t.finish().rc == 0, "the source exits after the hand-over")
        finish_guest(dst, "destination after a refused cancel")
    finally:
        src.kill()
        dst.kill()


def test_network_device_across_migration(ctx):
    """A guest echoing frames through its virtio-net device (the software
    vDPA device on a socket wire) is migrated while a peer sends it one
    frame every 2 ms: the peer counts what came back before, during and
    after; the destination's device echoes on its new wire, and the guest
    announces itself there (VIRTIO_NET_S_ANNOUNCE) and nowhere else."""
    import socket as so
    import threading
    from test_snapshot import echo_round
    peer = ctx.path("peer.sock")
    s = so.socket(so.AF_UNIX, so.SOCK_DGRAM)
    s.bind(peer)
    dev1, dev2, addr = ctx.path("dev1.sock"), ctx.path("dev2.sock"), f"unix:{ctx.path('n.mig')}"
    mac = f"mac={ECHO_MAC}"
    src = dst = None
    try:
        src = echo_source(ctx, dev1, peer)
        check(echo_round(s, dev1, 200, 1) == 200, "no echoes before the migration")
        dst = destination(ctx, "dst", addr, ["--net", f"vdpa-sim,socket={dev2},peer={peer},{mac}"])
        # a steady stream to the source's wire during the migration
        stop, sent = threading.Event(), []

        def stream():
            hdr = bytes.fromhex("525400ee0001") + bytes.fromhex("525400dd0001") + b"\x88\xb5"
            i = 0
            while not stop.is_set():
                try:
                    s.sendto(hdr + struct.pack("<II", 7, i) + b"\0" * 40, dev1)
                    sent.append(i)
                except OSError:
                    pass
                i += 1
                time.sleep(0.002)
        t = threading.Thread(target=stream)
        t.start()
        try:
            rc, out, err = migrate(src, addr)
        finally:
            stop.set()
            t.join()
        check(rc == 0, f"migrate: {err}")
        echoed = set()
        s.settimeout(0.3)
        try:
            while True:
                f = s.recv(2048)
                if f[12:14] == b"\x88\xb5":
                    tag, i = struct.unpack("<II", f[14:22])
                    if tag == 7:
                        echoed.add(i)
        except so.timeout:
            pass
        check(src.t.finish().rc == 0, "the source exits after the hand-over")
        # the destination's device moves frames on its new wire
        check(echo_round(s, dev2, 300, 3) == 300, "the migrated guest does not echo")
        dst.t.wait_report("net announce seen")
        acks = [x for x in dst.reports() if x.startswith("net announce ack=")]
        check(acks == ["net announce ack=0 cleared=1"], f"announce on the destination: {acks}")
        check(not any(x.startswith("net announce") for x in src.reports()), "the source announced")
        print(f"# frames during the migration: {len(sent)} sent at 2 ms intervals, {len(echoed)} echoed "
              f"by the source before it stopped, {len(sent) - len(echoed)} lost (the device runs on shadow "
              f"virtqueues through the {out['total_ms']} ms migration; the rest were sent after the hand-over)")
        finish_echo(dst, "destination guest")
    finally:
        s.close()
        for x in (src, dst):
            if x:
                x.kill()


def test_two_vms_exchange_frames_across_a_migration(ctx):
    """VM A echoes frames; VM B exchanges numbered, checksummed frames with
    it through two software vDPA devices joined by a socket pair. A
    migrates while B sends: B's exchange goes on to its end, every frame is
    either received intact or counted lost (none corrupt, duplicated or
    reordered), and A's destination echoes frames."""
    from migratelib import Tern
    a_sock, b_sock, addr = ctx.path("a.net"), ctx.path("b.net"), f"unix:{ctx.path('a.mig')}"
    a_net = f"vdpa-sim,socket={a_sock},peer={b_sock},mac=52:54:00:aa:00:01"
    count = 200000
    a = Tern(ctx, "a", ["--kernel", ctx.guest_elf, "--memory", "64M", "--cmdline", "test=net-echo", "--net", a_net])
    b = None
    dst = None
    try:
        a.t.wait_report("net echo ready")
        b = Tern(ctx, "b", ["--kernel", ctx.guest_elf, "--memory", "64M", "--net",
                            f"vdpa-sim,socket={b_sock},peer={a_sock},mac=52:54:00:bb:00:02",
                            "--cmdline", f"test=net-xchg count={count} peer=52:54:00:aa:00:01 timeout=60"])
        b.t.wait_report("net xchg start")
        # the destination's device takes over A's socket path: B's frames
        # reach it once it runs
        dst = destination(ctx, "a-dst", addr, ["--net", a_net])
        rc, out, err = migrate(a, addr)
        check(rc == 0, f"migrate: {err}")
        check(b.alive(), "B finished its exchange before A had moved: nothing crossed the migration")
        r = b.t.finish(timeout=90)
        line = [x for x in r.reports if x.startswith("net tx=")]
        check(line, "B reported no exchange", r)
        f = dict(kv.split("=") for kv in line[0].split()[1:])
        ok, gap = int(f["rx_ok"]), int(f["rx_gap"])
        check(int(f["rx_bad"]) == 0 and int(f["rx_dup"]) == 0, f"B: corrupt or duplicated frames: {line[0]}")
        check(ok + gap == count and ok > 0, f"B: every frame must arrive or be counted lost: {line[0]}")
        a.t.finish()
        dst.t.send(b"q")
        rd = dst.t.finish()
        echoed = [x for x in rd.reports if x.startswith("net echo count=")]
        check(echoed and int(echoed[0].split("=")[1]) > 0, "A's destination echoed nothing", rd)
        print(f"# two VMs across a migration ({out['total_ms']} ms, downtime {out['downtime_ms']} ms): "
              f"{count} frames, {ok} echoed back intact, {gap} lost around A's hand-over; "
              f"A's destination echoed {echoed[0].split('=')[1]}")
    finally:
        for x in (a, b, dst):
            if x:
                x.kill()


def test_no_second_copy_after_hand_over(ctx):
    """Once the destination runs the guest, the source refuses everything
    that would run it, or another copy of it, again: resume, pause,
    snapshots and a second migration - until it exits on its own (5 s
    after the hand-over when nobody reads the result)."""
    src = source(ctx)
    addr = f"unix:{ctx.path('h.mig')}"
    dst = destination(ctx, "dst", addr)
    try:
        rc, out, err = migrate(src, addr, "--no-wait")
        check(rc == 0, f"start: {err}")
        deadline = time.monotonic() + 20
        while src.api.client_ok("status")["migration"]["state"] != "completed":  # status does not end it
            check(time.monotonic() < deadline, "the migration never completed")
            time.sleep(0.01)
        for cmd, args in (("resume", []), ("pause", []), ("snapshot", ["--path", ctx.path("s")])):
            p = src.api.client(cmd, *args)
            check(p.returncode == 1 and "handed over" in p.stderr and "HTTP 409" in p.stderr,
                  f"{cmd} after the hand-over: {p.stderr!r}")
        rc, out, err = migrate(src, f"unix:{ctx.path('again.mig')}")
        check(rc == 1 and "was migrated to" in err, f"a second migration: {err!r}")
        r = src.t.finish(timeout=30)
        check(r.rc == 0, "the source ends by itself after the hand-over", r)
        finish_guest(dst, "the destination")
    finally:
        src.kill()
        dst.kill()


def test_waiting_destination_answers_and_stops(ctx):
    """A destination waiting for its migration answers its API (state
    "incoming"; 409 for what needs the VM) and stops when asked: PUT
    /vm/shutdown (status 0) or SIGTERM (status 1), while waiting or while
    receiving. Stopped mid-stream, it fails the migration and the source
    runs on. (Before, such a tern held every signal until the migration
    came, and its API accepted requests it never answered.)"""
    addr = f"unix:{ctx.path('w.mig')}"
    d = destination(ctx, "w1", addr)
    try:
        st, body, _ = d.api.curl("GET", "/vm")
        check(st == 200 and body["state"] == "incoming" and "vcpus" not in body, f"GET /vm while waiting: {st} {body}")
        st, body, _ = d.api.curl("GET", "/vm/status")
        check(st == 200 and body["state"] == "incoming" and body["migration"]["state"] == "none",
              f"GET /vm/status while waiting: {st} {body}")
        for method, path, data in (("PUT", "/vm/pause", None), ("PUT", "/vm/resume", None),
                                   ("PUT", "/vm/snapshot", json.dumps({"path": ctx.path("snap")})),
                                   ("PUT", "/vm/migrate", json.dumps({"to": f"unix:{ctx.path('x.mig')}"}))):
            st, body, _ = d.api.curl(method, path, data)
            check(st == 409 and "incoming migration" in body["error"], f"{method} {path} while waiting: {st} {body}")
        check(not os.path.exists(ctx.path("snap")), "a refused snapshot left a directory")
        p = d.api.client("shutdown")
        check(p.returncode == 0, f"tern shutdown: {p.stderr}")
        r = d.t.finish(timeout=15)
        check(r.rc == 0, "PUT /vm/shutdown ends a waiting destination with status 0", r)
        check(not os.path.exists(addr[5:]) and not os.path.exists(d.sock), "sockets left behind after shutdown")
    finally:
        d.kill()

    d = destination(ctx, "w2", addr)
    try:
        d.t.p.send_signal(signal.SIGTERM)
        r = d.t.finish(timeout=15)
        check(r.rc == 1 and "stopped by signal 15" in one_error_line(r), "SIGTERM while waiting", r)
        check(not os.path.exists(addr[5:]), "the migration socket was left behind")
    finally:
        d.kill()

    # 24 MiB at 4 MiB/s: the destination is stopped while receiving
    src = source(ctx, stamp="stamp mb=24 hot=1")
    d = destination(ctx, "w3", addr)
    try:
        mig = subprocess.Popen([ctx.tern, "migrate", "--api-sock", src.sock, "--to", addr, "--bandwidth", "4M"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_state(src, ("active",))
        time.sleep(0.5)
        d.t.p.send_signal(signal.SIGTERM)
        r = d.t.finish(timeout=20)
        check(r.rc == 1 and "stopped by signal 15" in one_error_line(r), "SIGTERM while receiving", r)
        out, err = mig.communicate(timeout=60)
        check(mig.returncode == 1 and "failed" in err, f"the source's migration: rc {mig.returncode} {err!r}")
        still_running(src)
        finish_guest(src, "the source after its destination was stopped")
    finally:
        src.kill()
        d.kill()


def test_write_heavy_guest_converges_by_throttling(ctx):
    """A guest rewriting 32 MiB as fast as it runs, over a link capped at
    64 MB/s, cannot fit a 50 ms pause: with the default --converge throttle
    tern slows its vCPUs in steps until the rest fits, well before
    --max-passes, and the page-stamp check passes on the destination; with
    --converge cancel the migration gives up at --max-passes and the source
    runs on at full speed."""
    src = source(ctx, stamp="stamp mb=32 hot=32")
    addr = f"unix:{ctx.path('conv.mig')}"
    try:
        dst = destination(ctx, "dst-cancel", addr)
        rc, out, err = migrate(src, addr, "--bandwidth", "64M", "--max-passes", "6", "--converge", "cancel")
        check(rc == 1 and "did not converge in 6 passes" in err and "--converge cancel" in err,
              f"--converge cancel: {err!r}")
        prog = src.migration()
        check(prog["state"] == "failed" and prog["throttle_pct"] == 0 and prog["pass"] >= 6,
              f"cancelled migration: {prog}")
        still_running(src)
        dst.kill()
        dst = destination(ctx, "dst-throttle", addr)
        rc, out, err = migrate(src, addr, "--bandwidth", "64M", "--max-passes", "30")
        check(rc == 0, f"the throttled migration: {err}")
        check(out["throttle_pct"] >= 20 and "throttle" in err, f"no throttle: {out}; {err[-300:]}")
        check(len(out["passes"]) < 30 and out["downtime_ms"] <= 50 + 50,
              f"it stopped at {len(out['passes'])} passes with a {out['downtime_ms']} ms pause: {out}")
        print(f"# write-heavy guest over 64 MB/s: {len(out['passes'])} passes, throttled to {out['throttle_pct']}%, "
              f"downtime {out['downtime_ms']} ms")
        src.t.finish()
        finish_guest(dst, "the throttled guest's destination")
    finally:
        src.kill()
