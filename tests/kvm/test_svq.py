"""Shadow virtqueues and the passthrough <-> SVQ switch (issue 8), run as a
user would: tern processes with the test guest, the software vDPA device on
socket wires, `tern migrate`, and GET /vm's "net" entries for the device's
mode and switch counters. The per-call fault sweep of both switches, with
frames checked one by one, is tests/unit/shadow_test.c; here the switch
fails inside real migrations (TERN_TEST_FAULTS=switch=...)."""
import socket
import struct
import threading
import time

from migratelib import Tern, destination, finish_guest, migrate, source, wait_state
from test_snapshot import echo_round
from ternlib import check

ECHO_MAC = "52:54:00:ee:00:01"
KEEP_BASE, VRFY_LEN = 1100, 1000  # firmware/net_echo.c


def net_info(t):
    return t.api.client_ok("info")["net"][0]


def echo_vm(ctx, name, dev, peer, svq=None, env=None, extra=()):
    net = f"vdpa-sim,socket={dev},peer={peer},mac={ECHO_MAC}" + (f",svq={svq}" if svq else "")
    t = Tern(ctx, name, ["--kernel", ctx.guest_elf, "--memory", "64M", "--cmdline", "test=net-echo",
                         "--net", net] + list(extra), env=env)
    t.t.wait_report("net echo ready")
    return t


def peer_socket(ctx, name="peer.sock"):
    path = ctx.path(name)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    return s, path


def test_svq_on_moves_frames_both_ways(ctx):
    """svq=on: both VMs' data queues run through shadow virtqueues from
    DRIVER_OK on (strategy 1 on the software device); B exchanges 100000
    numbered, checksummed frames with A's echo, so 10^5 frames cross each
    SVQ each way: every one intact, none duplicated or reordered; the few
    the echo guest drops when its TX ring is full are counted."""
    a_sock, b_sock = ctx.path("a.net"), ctx.path("b.net")
    count = 100000
    a = echo_vm(ctx, "a", a_sock, b_sock, svq="on")
    b = None
    try:
        ia = net_info(a)
        check(ia["mode"] == "svq" and ia["strategy"] == 1 and ia["svq"] == "on", f"A's device: {ia}")
        b = Tern(ctx, "b", ["--kernel", ctx.guest_elf, "--memory", "64M", "--net",
                            f"vdpa-sim,socket={b_sock},peer={a_sock},mac=52:54:00:bb:00:02,svq=on",
                            "--cmdline", f"test=net-xchg count={count} peer={ECHO_MAC} timeout=120"])
        r = b.t.finish(timeout=150)
        line = [x for x in r.reports if x.startswith("net tx=")]
        check(line, "B reported no exchange", r)
        f = dict(kv.split("=") for kv in line[0].split()[1:])
        # the echo guest drops a frame when its TX ring is full (as in
        # passthrough, under load): such frames are counted, never damaged
        ok, gap = int(f["rx_ok"]), int(f["rx_gap"])
        check(ok + gap == count and int(f["rx_bad"]) == 0 and int(f["rx_dup"]) == 0 and ok >= count * 9 // 10,
              f"B through two SVQs: {line[0]}")
        ia = net_info(a)
        check(ia["mode"] == "svq" and ia["switches"] == 1 and ia["rollbacks"] == 0, f"A's device: {ia}")
        print(f"# svq=on: {count} frames each way through both VMs' shadow virtqueues: {line[0]}")
    finally:
        for x in (a, b):
            if x:
                x.kill()


def keep_stream(s, dev, stop, sent, gap=0.005):
    """KEEP frames to dev until stop: frame seq is KEEP_BASE + seq bytes
    long and carries the pattern the guest checks; it keeps up to 128."""
    hdr = bytes.fromhex(ECHO_MAC.replace(":", "")) + bytes.fromhex("525400dd0001") + b"\x88\xb5"
    seq = 1
    while not stop.is_set() and seq <= 120:
        body = bytes((seq * 7 + i) & 0xFF for i in range(14, KEEP_BASE + seq))
        try:
            s.sendto(hdr + body, dev)
            sent.append(seq)
            seq += 1
        except OSError:
            pass
        time.sleep(gap)


def rx_payload_run(ctx, restart=False):
    """See test_rx_payload_and_switch_across_migration; with restart the
    guest resets and restarts its device while the source is held in
    'stopped', before the frames arrive."""
    s, peer = peer_socket(ctx)
    dev1, dev2, addr = ctx.path("dev1.sock"), ctx.path("dev2.sock"), f"unix:{ctx.path('k.mig')}"
    src = dst = None
    try:
        src = echo_vm(ctx, "src", dev1, peer, env={"TERN_TEST_FAULTS": "migrate-stall=stopped"})
        i0 = net_info(src)
        check(i0["mode"] == "passthrough" and i0["switches"] == 0 and i0["svq"] == "auto", f"before: {i0}")
        check(echo_round(s, dev1, 100, 1) == 100, "no echoes before the migration")
        dst = destination(ctx, "dst", addr, ["--net", f"vdpa-sim,socket={dev2},peer={peer},mac={ECHO_MAC}"])
        stop, sent = threading.Event(), []
        result = {}
        mt = threading.Thread(target=lambda: result.setdefault("m", migrate(src, addr)))
        mt.start()
        wait_state(src, ("stopped",))
        if restart:
            src.t.send(b"r")
            src.t.wait_report("net echo restarted")
        ii = net_info(src)
        check(ii["mode"] == "svq", f"during the migration: {ii}")
        t = threading.Thread(target=keep_stream, args=(s, dev1, stop, sent))
        t.start()
        mt.join()
        stop.set()
        t.join()
        rc, out, err = result["m"]
        check(rc == 0, f"migrate: {err}")
        r = src.t.finish()
        check("shadow virtqueues on (strategy 1)" in r.stderr, f"the source's switch: {r.stderr}")
        s.sendto(bytes.fromhex(ECHO_MAC.replace(":", "")) + bytes.fromhex("525400dd0001") + b"\x88\xb5" +
                 b"\0" * (VRFY_LEN - 14), dev2)
        deadline = time.monotonic() + 10
        keep = []
        while time.monotonic() < deadline and not keep:
            keep = [x for x in dst.reports() if x.startswith("net keep ")]
            time.sleep(0.05)
        check(keep, "the destination's guest never checked its kept buffers")
        f = dict(kv.split("=") for kv in keep[0].split()[2:])
        check(int(f["bad"]) == 0, f"bytes the source's device wrote are missing on the destination: {keep[0]}")
        check(int(f["n"]) >= 50, f"too few frames arrived while the source was stopping: {keep[0]} "
                                 f"({len(sent)} sent)")
        di = net_info(dst)
        check(di["mode"] == "passthrough" and di["switches"] == 0, f"the destination starts in passthrough: {di}")
        check(echo_round(s, dev2, 200, 3) == 200, "the migrated guest does not echo")
        dst.t.send(b"q")
        dst.t.finish()
        return f, out
    finally:
        s.close()
        for x in (src, dst):
            if x:
                x.kill()


def test_rx_payload_after_a_device_restart_during_migration(ctx):
    """The guest resets and restarts its network device while the source
    is held in 'stopped' (svq=auto): the restarted device goes straight
    onto shadow virtqueues, so what it then writes still reaches the
    destination."""
    f, out = rx_payload_run(ctx, restart=True)
    print(f"# after a device restart mid-migration: {f['n']} RX buffers intact on the destination")


def test_rx_payload_and_switch_across_migration(ctx):
    """svq=auto: passthrough until the migration starts, then SVQ. The
    source is held 3 s in 'stopped' before its vCPUs stop
    (migrate-stall): the pre-copy passes are over, the device still
    fills the guest's RX buffers, and only the shadow queues' dirty marks
    bring those bytes across. The destination's guest then checks every
    buffer it kept against the length (and so the sequence number) it
    noted on the source, and the destination started in passthrough."""
    f, out = rx_payload_run(ctx)
    print(f"# {f['n']} RX buffers written by the device after the last pre-copy pass, all intact on the "
          f"destination; migration {out['total_ms']} ms, downtime {out['downtime_ms']} ms")


def test_page_stamps_with_a_net_device_svq_auto(ctx):
    """The page-stamp guest (hot pages rewritten while it migrates) with a
    net device whose driver never starts: svq=auto switches nothing and
    the page check passes on the destination."""
    s, peer = peer_socket(ctx)
    addr = f"unix:{ctx.path('p.mig')}"
    net = f"vdpa-sim,socket={ctx.path('d1')},peer={peer}"
    src = source(ctx, extra=["--net", net])
    dst = destination(ctx, "dst", addr, ["--net", f"vdpa-sim,socket={ctx.path('d2')},peer={peer}"])
    try:
        rc, out, err = migrate(src, addr)
        check(rc == 0, f"migrate: {err}")
        finish_guest(dst, "the destination")
    finally:
        s.close()
        src.kill()
        dst.kill()


def failing_migrations(ctx, src, s, dev, peer, want, cancel=False, limit=40):
    """Migrations of src that fail until one gets through the switch; each
    needs a destination to get past the handshake. Returns the count."""
    n = 0
    for k in range(limit):
        addr = f"unix:{ctx.path(f'f{k}.mig')}"
        dst = destination(ctx, f"d{k}", addr, ["--net", f"vdpa-sim,socket={ctx.path(f'd{k}')},peer={peer}"])
        try:
            if cancel:
                p = src.api.client("migrate", "--to", addr, "--no-wait")
                check(p.returncode == 0, f"migrate --no-wait: {p.stderr}")
                wait_state(src, ("active",))
                src.api.client_ok("migrate-cancel")
                wait_state(src, ("cancelled",))
                rc, err = 1, src.migration().get("error", "")
            else:
                rc, out, err = migrate(src, addr)
        finally:
            dst.kill()
        if rc == 0:
            # through: the source handed over and exits
            check(src.t.finish().rc == 0, "the source after the migration that got through")
            return n, None
        i = net_info(src)
        if (not cancel and "rolled back" not in err) or i["rollbacks"] == n:
            return n, i
        n += 1
        check(src.status()["state"] == "running", f"call {k}: the source must run on")
        want(k, i, err)
        check(echo_round(s, dev, 50, 10 + k) == 50, f"call {k}: the source's device stopped echoing")
    return n, net_info(src)


def test_switch_into_svq_fails_at_each_call(ctx):
    """The k-th migration's switch into SVQ fails at backend call k
    (TERN_TEST_FAULTS=switch=to-svq:each), for every call the switch makes: each
    migration fails, the source runs on in passthrough and echoes, and the
    device's IOTLB is back to its size (no shadow mapping leaked)."""
    s, peer = peer_socket(ctx)
    dev = ctx.path("dev.sock")
    src = None
    try:
        src = echo_vm(ctx, "src", dev, peer, env={"TERN_TEST_FAULTS": "switch=to-svq:each"})
        base = net_info(src)["iotlb_entries"]

        def want(k, i, err):
            check(i["mode"] == "passthrough" and i["shadow_maps"] == 0 and i["iotlb_entries"] == base,
                  f"call {k}: after the rollback: {i} ({err})")
        n, last = failing_migrations(ctx, src, s, dev, peer, want)
        check(n >= 10 and last is None, f"{n} failed switches, then {last}")
        print(f"# switch into SVQ failed at each of its {n} backend calls in turn, inside {n} migrations: "
              f"every one rolled back, the source echoing after each; migration {n + 1} went through")
    finally:
        s.close()
        if src:
            src.kill()


def test_switch_back_fails_at_each_call(ctx):
    """svq=auto, migrations cancelled while active: the switch back to
    passthrough fails at call k of the k-th cancel (TERN_TEST_FAULTS=
    switch=to-passthrough:each): the device stays on its shadow queues, echoing,
    until a switch back gets through; then it is in passthrough with the
    IOTLB as it began."""
    s, peer = peer_socket(ctx)
    dev = ctx.path("dev.sock")
    src = None
    try:
        src = echo_vm(ctx, "src", dev, peer, env={"TERN_TEST_FAULTS":
                                                  "switch=to-passthrough:each;migrate-stall=active"})
        base = net_info(src)["iotlb_entries"]

        def want(k, i, err):
            check(i["mode"] == "svq" and i["shadow_maps"] == 2 and i["iotlb_entries"] == base + 2,
                  f"call {k}: after the failed switch back: {i}")
        n, last = failing_migrations(ctx, src, s, dev, peer, want, cancel=True)
        check(n >= 8 and last["mode"] == "passthrough" and last["iotlb_entries"] == base and
              last["recoveries"] == 0, f"{n} failed switches back, then {last}")
        check(echo_round(s, dev, 100, 99) == 100, "no echoes in passthrough at the end")
        print(f"# switch back to passthrough failed at each of its {n} backend calls in turn: every one "
              f"stayed on SVQ and echoed; the next got through")
    finally:
        s.close()
        if src:
            src.kill()


def fake_destination(path, stop):
    """A destination that accepts every configuration and then just reads:
    enough for a source to reach its switch into SVQ (which comes after the
    handshake), cheaply, any number of times in a row."""
    from test_migrate import crc32c
    hdr = struct.pack("<IIQ", 32, 0, 0)  # ACCEPT, no payload
    accept = hdr + struct.pack("<I", crc32c(hdr)) + b"\0" * 4
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(4)
    srv.settimeout(0.2)

    def serve():
        while not stop.is_set():
            try:
                c, _ = srv.accept()
            except socket.timeout:
                continue
            with c:
                c.sendall(accept)
                c.settimeout(5)
                try:
                    while c.recv(65536):
                        pass
                except OSError:
                    pass
        srv.close()
    t = threading.Thread(target=serve)
    t.start()
    return t


def test_hundred_failed_switches_leave_the_iotlb_as_it_was(ctx):
    """100 migrations in a row whose switch into SVQ fails at the same call
    (TERN_TEST_FAULTS=switch=to-svq:set_vring_addr#1: the device suspended,
    its first queue already re-pointed): every one rolls back to passthrough with the device's
    IOTLB at its starting size and no shadow mapping left, and the source
    keeps echoing."""
    s, peer = peer_socket(ctx)
    dev = ctx.path("dev.sock")
    stop = threading.Event()
    addr = ctx.path("fake.mig")
    th = fake_destination(addr, stop)
    src = None
    try:
        src = echo_vm(ctx, "src", dev, peer, env={"TERN_TEST_FAULTS": "switch=to-svq:set_vring_addr#1"})
        base = net_info(src)["iotlb_entries"]
        check(base > 0, f"the device maps guest RAM: {base}")
        for k in range(100):
            rc, out, err = migrate(src, f"unix:{addr}")
            i = net_info(src)
            check(rc != 0 and "rolled back to passthrough" in err and "(set_vring_addr)]" in err,
                  f"cycle {k}: rc={rc} {err}")
            check(i["mode"] == "passthrough" and i["rollbacks"] == k + 1 and i["shadow_maps"] == 0 and
                  i["iotlb_entries"] == base and i["recoveries"] == 0, f"cycle {k}: {i}")
            if k % 25 == 24:
                check(echo_round(s, dev, 50, 100 + k) == 50, f"cycle {k}: the source stopped echoing")
        check(src.status()["state"] == "running", "the source must run on")
        print(f"# 100 migrations failed at the switch's second set_vring_addr: 100 rollbacks, IOTLB at {base} entries "
              f"after each, echoes throughout")
    finally:
        stop.set()
        th.join()
        s.close()
        if src:
            src.kill()
