"""Control-queue state across migration and restore (issue 9). The test
guest (test=net-filter hold=2) sets receive filters through its control
queue - PROMISC and ALLMULTI off, MAC tables {other} / {mcast}, VLAN 42,
NOBCAST - which tern shadows, validates and records. A peer sends each kind
of frame before and after the VM moves; the guest counts what arrives.
Without replay the destination's device would start promiscuous and let
everything through."""
import os
import socket
import time

from migratelib import Tern, destination, migrate, never_ran, wait_state
from test_net_filter import BURST, DEST, MAC, frame
from ternlib import check, num

HOLD = dict(own=BURST, other=BURST, bcast=0, mcast=BURST, v42=BURST, v43=0)


def send_phase(s, dev, t, phase, ready=None, ip=None):
    """The bursts and the END marker for one phase, once the guest is ready
    for it (as reported to `ready`, t by default: a guest that moved said
    so before it moved); returns the counts it reported to t. ip: a frame
    sent once before END (hash=1's probe; "hashed" and "hash" then come
    back too)."""
    import time
    (ready or t).t.wait_report(f"filter phase={phase} ready", timeout=30)
    deadline = time.monotonic() + 10
    while not os.path.exists(dev) and time.monotonic() < deadline:  # a new tern binds it
        time.sleep(0.01)
    for dst, vid in DEST.values():
        for _ in range(BURST):
            s.sendto(frame(dst, vid), dev)
    if ip:
        s.sendto(ip, dev)
    s.sendto(frame(DEST["own"][0], None, flags=2), dev)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        got = [x for x in t.reports() if x.startswith(f"filter phase={phase} own=")]
        if got:
            f = dict(kv.split("=") for kv in got[0].split()[1:])
            out = {k: num(f[k]) for k in list(HOLD) + ["q0", "q1", "ip4", "hashed"] if k in f}
            if "hash" in f:
                out["hash"] = f["hash"]
            return out
        time.sleep(0.02)
    raise AssertionError(f"no counts for phase {phase}: {t.reports()}")


def classes(got):
    return {k: got[k] for k in HOLD}


def filter_vm(ctx, s, peer, name="src", big=0, opts="", hold=2, extra="", ip=None, env=None):
    dev = ctx.path(f"{name}.dev")
    t = Tern(ctx, name, ["--kernel", ctx.guest_elf, "--memory", "64M", "--cmdline",
                         f"test=net-filter hold={hold} bigtable={big} timeout=60 {extra}",
                         "--net", f"vdpa-sim,socket={dev},peer={peer},mac={MAC}{opts}"], env=env)
    for phase in range(4):
        t.early = send_phase(s, dev, t, phase, ip=ip)
    t.t.wait_report("filter hold set fail=0")
    got = send_phase(s, dev, t, 4, ip=ip)
    check(classes(got) == HOLD, f"the filter before the move: {got}, want {HOLD}")
    t.before = got
    # tern's record of what the guest set, and the device's own state:
    # the same unless the table was more than the device keeps
    info = net_info(t)
    t.rec = info["ctrl"]
    if not big:
        check(info["device_ctrl"] == t.rec, f"the source device {info['device_ctrl']} vs tern's record {t.rec}")
    return t, dev


def move(ctx, src, s, peer, name="dst", opts="", same=None, ip=None):
    """Migrates src to a new destination tern on the same wire and runs
    phase 5 there; returns (destination, its counts). With same, the
    destination's device must have that state once the move is done. The
    destination is killed if the move fails."""
    addr = f"unix:{ctx.path(name + '.mig')}"
    dev2 = ctx.path(f"{name}.dev")
    dst = destination(ctx, name, addr, ["--net", f"vdpa-sim,socket={dev2},peer={peer},mac={MAC}{opts}"])
    try:
        src.t.wait_report("filter phase=5 ready")
        rc, out, err = migrate(src, addr)
        check(rc == 0, f"migrate: {err}")
        if same is not None:
            dev = net_info(dst)["device_ctrl"]
            check(dev == same, f"the destination device's state {dev}, want {same}")
        return dst, send_phase(s, dev2, dst, 5, ready=src, ip=ip)
    except BaseException:
        dst.kill()
        raise


def restore(ctx, t, peer, phase, opts=""):
    """Snapshots t once its guest waits for phase, shuts it down and
    restores the snapshot in a new tern with a new device (no mac=: its
    own MAC differs, and the guest's (CTRL_MAC_ADDR) is part of what is
    replayed); returns (the new tern, its device's socket)."""
    snap = ctx.path("snap")
    t.t.wait_report(f"filter phase={phase} ready")
    t.api.client_ok("snapshot", "--path", snap, "--no-resume")
    t.api.client("shutdown")
    t.t.finish()
    dev = ctx.path("r.dev")
    return Tern(ctx, "restored", ["--restore", snap, "--net", f"vdpa-sim,socket={dev},peer={peer}{opts}"]), dev


def peer_socket(ctx):
    path = ctx.path("peer.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    return s, path


def test_filters_survive_migration(ctx):
    """The destination's device gets the guest's filter state before its
    data queues run: the same frames pass after the move as before, and
    the device's own state is the source's record."""
    s, peer = peer_socket(ctx)
    src = dst = None
    try:
        src, _ = filter_vm(ctx, s, peer)
        dst, got = move(ctx, src, s, peer, same=src.rec)
        check(classes(got) == HOLD, f"the filter after the migration: {got}, want {HOLD} (a blank device passes all)")
        r = dst.t.finish()
        check(r.rc == 0, "the guest's filter test failed on the destination", r)
        rep = [l for l in r.stderr.splitlines() if "control state replayed" in l]
        check(rep, f"the destination did not replay: {r.stderr}")
        print(f"# {rep[0].split(': ', 1)[1]}")
    finally:
        s.close()
        for x in (src, dst):
            if x:
                x.kill()


def test_filters_survive_restore(ctx):
    """The same across a snapshot and a restore in a new tern (whose device
    has another MAC: the guest's is replayed)."""
    s, peer = peer_socket(ctx)
    src = new = None
    try:
        src, _ = filter_vm(ctx, s, peer)
        new, dev2 = restore(ctx, src, peer, 5)
        dev = net_info(new)["device_ctrl"]
        check(dev == src.rec, f"the restored device's state {dev}, want the source's record {src.rec}")
        got = send_phase(s, dev2, new, 5, ready=src)
        check(classes(got) == HOLD, f"the filter after the restore: {got}, want {HOLD}")
        r = new.t.finish()
        check(r.rc == 0 and "control state replayed" in r.stderr, "the restored guest", r)
    finally:
        s.close()
        for x in (src, new):
            if x:
                x.kill()


def test_nack_during_replay_leaves_the_source_running(ctx):
    """The destination's device refuses the second replayed command
    (TERN_TEST_FAULTS=cvq-nack=2): the migration fails, saying which command, and
    the source runs on with its filter intact."""
    s, peer = peer_socket(ctx)
    src = dst = None
    try:
        src, dev = filter_vm(ctx, s, peer)
        addr = f"unix:{ctx.path('n.mig')}"
        dst = destination(ctx, "dst", addr, ["--net", f"vdpa-sim,socket={ctx.path('d2')},peer={peer},mac={MAC}"],
                          env={"TERN_TEST_FAULTS": "cvq-nack=2"})
        rc, out, err = migrate(src, addr)
        check(rc != 0 and "refused the replayed" in err, f"migrate should fail on the NACK: rc={rc} {err}")
        check(src.status()["state"] == "running", "the source must run on")
        got = send_phase(s, dev, src, 5)
        check(got == HOLD, f"the source's filter after the failed migration: {got}")
    finally:
        s.close()
        for x in (src, dst):
            if x:
                x.kill()


def test_oversized_mac_tables_survive_migration(ctx):
    """Unicast tables larger than the device keeps (40 > its 32: tern
    records them exactly and replays them) and larger than tern records
    (80 > 64: replayed as ALLUNI): either way "other" frames pass, as the
    guest was told they would, before and after the move."""
    for big in (40, 80):
        s, peer = peer_socket(ctx)
        src = dst = None
        try:
            src, _ = filter_vm(ctx, s, peer, name=f"src{big}", big=big)
            dst, got = move(ctx, src, s, peer, name=f"dst{big}")
            check(got == HOLD, f"table of {big}: the filter after the migration: {got}, want {HOLD}")
        finally:
            s.close()
            os.unlink(peer)
            for x in (src, dst):
                if x:
                    x.kill()


def test_switch_resets_keep_the_source_filter(ctx):
    """Switch strategy 3 resets the source's device twice - into shadow
    virtqueues when the migration starts, back when it fails (here, on a
    NACK at the destination) - and each reset drops the device's filter:
    tern replays its record after each, so the source's guest sees the
    same frames afterwards."""
    s, peer = peer_socket(ctx)
    src = dst = None
    try:
        src, dev = filter_vm(ctx, s, peer, opts=",switch=3")
        addr = f"unix:{ctx.path('s3.mig')}"
        dst = destination(ctx, "dst", addr, ["--net", f"vdpa-sim,socket={ctx.path('d3')},peer={peer},mac={MAC}"],
                          env={"TERN_TEST_FAULTS": "cvq-nack=1"})
        rc, out, err = migrate(src, addr)
        check(rc != 0, f"the migration should fail: {err}")
        got = send_phase(s, dev, src, 5)
        check(got == HOLD, f"the source's filter after two strategy-3 resets: {got}, want {HOLD}")
        src.kill()
        r = src.t.finish()
        n = r.stderr.count("after a reset, control state replayed")
        check(n >= 2, f"the source replayed {n} times: {r.stderr}")
    finally:
        s.close()
        for x in (src, dst):
            if x:
                x.kill()


def test_replay_nack_on_the_source_keeps_record_and_device_equal(ctx):
    """The source's own replay after a switch's reset is refused in the
    middle (the software device NACKs its 11th command: the guest sent 9,
    the replay's 2nd is PROMISC off). tern collects the rest of that batch,
    and its record is what the device then holds - PROMISC still on, the
    rest applied - not what the guest had asked for: GET /vm shows the two
    equal while the migration runs (the record is what it would send),
    and again after it is cancelled and the switch back replayed that
    record. The guest, whose device now passes everything, sees the frames
    it had filtered out."""
    s, peer = peer_socket(ctx)
    src = dst = None
    try:
        src, dev = filter_vm(ctx, s, peer, opts=",switch=3",
                             env={"TERN_TEST_FAULTS": "cvq-nack=11;migrate-stall=active"})
        check("promisc" not in src.rec["rx"], f"the guest's record: {src.rec}")
        want = dict(src.rec, rx=sorted(src.rec["rx"] + ["promisc"]))
        addr = f"unix:{ctx.path('n11.mig')}"
        dst = destination(ctx, "dst", addr, ["--net", f"vdpa-sim,socket={ctx.path('d11')},peer={peer},mac={MAC}"])
        rc, out, err = migrate(src, addr, "--no-wait")
        check(rc == 0, f"start: {err}")
        wait_state(src, ["active"])
        for when in ("during the migration", "after its cancel"):
            info = net_info(src)
            check(info["ctrl"] == info["device_ctrl"],
                  f"{when}: tern's record {info['ctrl']} vs the device {info['device_ctrl']}")
            got = dict(info["ctrl"], rx=sorted(info["ctrl"]["rx"]))
            check(got == want, f"{when}: record {got}, want the guest's state with PROMISC on {want}")
            if when.startswith("during"):
                check(info["mode"] == "svq", f"{when}: {info}")
                src.api.client_ok("migrate-cancel")
                wait_state(src, ["cancelled"])
        got = send_phase(s, dev, src, 5)
        check(got["bcast"] == BURST and got["v43"] == BURST, f"a promiscuous device passes all: {got}")
        src.kill()
        r = src.t.finish()
        check("could not be replayed" in r.stderr and "refused the replayed RX_PROMISC" in r.stderr,
              f"the source's log: {r.stderr}")
    finally:
        s.close()
        for x in (src, dst):
            if x:
                x.kill()


def net_info(t):
    return t.api.client_ok("info")["net"][0]


def all_on_queue_1(got, when):
    """Every frame of a phase (the held classes and END) on queue 1."""
    total = sum(HOLD.values()) + 1
    check(got.get("q0") == 0 and got.get("q1") == total,
          f"{when}: frames per queue {got.get('q0')}/{got.get('q1')}, want 0/{total} (RSS steers all to queue 1; "
          "a device without the replayed pairs or RSS uses queue 0)")


def test_rss_and_queue_pairs_survive_migration_and_restore(ctx):
    """Two queue pairs and an RSS state that sends everything to receive
    queue 1, set by the guest, hold after a migration and again after a
    snapshot of the destination is restored in a third tern: checked from
    inside the guest (which queue the frames arrive on, and the filter
    counts) and from the software device's own state, which must equal
    what the source recorded. The guest also turned its checksum offload
    off (GUEST_OFFLOADS_SET 0), which only the devices' state shows. It had
    one RSS command refused
    by tern (answered by tern, so the guest's control ring is one ahead of
    the device's): after each move its next command must still be
    answered, which needs the guest's index, not the device's, to travel."""
    s, peer = peer_socket(ctx)
    src = dst = new = None
    try:
        src, _ = filter_vm(ctx, s, peer, opts=",queues=2", hold=4, extra="rss=1")
        all_on_queue_1(src.before, "before the move")
        rec = src.rec  # filter_vm checked the source device has it
        check(rec["pairs"] == 2 and rec["rss"]["mode"] == "steer" and rec["rss"]["table"] == [1] * 8 and
              rec["rss"]["unclassified"] == 1 and rec["rss"]["hash_types"] == 7 and rec["vlans"] == 1 and
              rec["rx"] == ["nobcast"] and rec["offloads"] == 0, f"tern's record of the guest's state: {rec}")
        dst, got = move(ctx, src, s, peer, opts=",queues=2", same=rec)
        check(classes(got) == HOLD, f"the filter after the migration: {got}, want {HOLD}")
        all_on_queue_1(got, "after the migration")
        new, dev3 = restore(ctx, dst, peer, 6, opts=",queues=2")
        # the device's state now (the guest exits after its last phase)
        check(net_info(new)["device_ctrl"] == rec,
              f"the restored device's state {net_info(new)['device_ctrl']}, want {rec}")
        got = send_phase(s, dev3, new, 6, ready=dst)
        check(classes(got) == HOLD, f"the filter after the restore: {got}, want {HOLD}")
        all_on_queue_1(got, "after the restore")
        # the guest's control queue answers on the restored device too
        got = send_phase(s, dev3, new, 7)
        all_on_queue_1(got, "after a control command on the restored device")
        r = new.t.finish()
        check(r.rc == 0 and "control state replayed" in r.stderr, "the restored guest", r)
        rep = [l for l in r.stderr.splitlines() if "control state replayed" in l]
        print(f"# restore: {rep[0].split(': ', 1)[1]}")
    finally:
        s.close()
        for x in (src, dst, new):
            if x:
                x.kill()


def udp_probe(sport=40001, dport=5001):
    """An IPv4/UDP frame to the guest (10.9.8.7 -> 10.9.8.1): what the
    device hashes; returns (frame, the Toeplitz hash it must have under
    the guest's key, over addresses and ports)."""
    import struct
    src_ip, dst_ip = bytes([10, 9, 8, 7]), bytes([10, 9, 8, 1])
    payload = b"hash probe"
    udp = struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, src_ip, dst_ip)
    f = bytes.fromhex(MAC.replace(":", "")) + bytes.fromhex("525400dd0001") + b"\x08\x00" + ip + udp
    return f, toeplitz(HASH_KEY, src_ip + dst_ip + struct.pack(">HH", sport, dport))


# firmware/net_filter.c's key (the DPDK/Microsoft verification key)
HASH_KEY = bytes.fromhex("6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c6a42b73bbeac01fa")


def toeplitz(key, data):
    """The Toeplitz hash (virtio 1.2 5.1.6.4.3.1), written from the spec."""
    k, kbits, h = int.from_bytes(key, "big"), len(key) * 8, 0
    for i, byte in enumerate(data):
        for b in range(8):
            if byte & (0x80 >> b):
                h ^= (k >> (kbits - 32 - (8 * i + b))) & 0xffffffff
    return h


def hashed(got, want, when):
    check(got.get("ip4") == 1, f"{when}: the guest got {got.get('ip4')} UDP probes, want 1")
    check(got.get("hashed") == 1 and got.get("hash") == f"3:{want:#x}",
          f"{when}: the guest saw {got.get('hashed')} hashed frames, the last {got.get('hash')!r}; want 1, "
          f"3:{want:#x} (UDPv4 and the Toeplitz hash; a device without the replayed hash configuration "
          "reports none)")


def test_hash_reporting_survives_migration_and_restore(ctx):
    """HASH_REPORT (vdpa-sim,hash-report=on): the guest configures hash
    reporting only (MQ_HASH_CONFIG; one with a 41-byte key is refused by
    tern). Before the configuration the device reports no hash; after it,
    and after a migration and a restore of the destination, the guest's
    UDP probe arrives with the UDPv4 report and the hash the test computes
    itself; and each new device's own state equals the source's record
    (mode "hash", which replay sends as HASH_CONFIG, not RSS_CONFIG)."""
    s, peer = peer_socket(ctx)
    src = dst = new = None
    probe, want = udp_probe()
    # the spec's verification vector for this key (virtio 1.2 5.1.6.4.3.1,
    # from the Microsoft RSS documentation): 66.9.149.187:2794 ->
    # 161.142.100.80:1766 hashes to 0x51ccc178
    check(toeplitz(HASH_KEY, bytes([66, 9, 149, 187, 161, 142, 100, 80, 0x0a, 0xea, 0x06, 0xe6])) == 0x51ccc178,
          "the test's own Toeplitz hash")
    opts = ",hash-report=on"
    try:
        src, _ = filter_vm(ctx, s, peer, opts=opts, hold=4, extra="hash=1", ip=probe)
        check(src.early.get("ip4") == 1 and src.early.get("hashed") == 0,
              f"the probe before the guest configured hashing (it must arrive, unhashed): {src.early}")
        hashed(src.before, want, "before the move")
        rec = src.rec
        check(rec["rss"]["mode"] == "hash" and rec["rss"]["hash_types"] == 7 and rec["pairs"] == 1,
              f"tern's record of the guest's state: {rec}")
        dst, got = move(ctx, src, s, peer, opts=opts, same=rec, ip=probe)
        check(classes(got) == HOLD, f"the filter after the migration: {got}, want {HOLD}")
        hashed(got, want, "after the migration")
        new, dev3 = restore(ctx, dst, peer, 6, opts=opts)
        check(net_info(new)["device_ctrl"] == rec,
              f"the restored device's state {net_info(new)['device_ctrl']}, want {rec}")
        got = send_phase(s, dev3, new, 6, ready=dst, ip=probe)
        check(classes(got) == HOLD, f"the filter after the restore: {got}, want {HOLD}")
        hashed(got, want, "after the restore")
        send_phase(s, dev3, new, 7, ip=probe)
        r = new.t.finish()
        check(r.rc == 0 and "control state replayed" in r.stderr, "the restored guest", r)
    finally:
        s.close()
        for x in (src, dst, new):
            if x:
                x.kill()


def test_control_queue_answers_held_at_the_stop_with_svq_off(ctx):
    """svq=off: the device is frozen for the whole migration, but tern
    still answers control commands itself (here: an unknown class, ERR).
    The guest sends them back to back; each migration stops it with one in
    flight. That answer must not be given after the stop (the saved index
    would count an answer the destination's memory lacks, and the guest
    would wait for it for ever), and those given during pre-copy must
    reach the destination: three migrations, every command answered."""
    s, peer = peer_socket(ctx)
    ts = []
    try:
        net = lambda n: ["--net", f"vdpa-sim,socket={ctx.path(n + '.dev')},peer={peer},mac={MAC},svq=off"]
        t = Tern(ctx, "c0", ["--kernel", ctx.guest_elf, "--memory", "64M", "--cmdline",
                             "test=net-cvq loop=8"] + net("c0"))
        ts.append(t)
        t.t.wait_report("cvq loop started", timeout=30)
        for i in range(1, 4):
            addr = f"unix:{ctx.path(f'c{i}.mig')}"
            d = destination(ctx, f"c{i}", addr, net(f"c{i}"))
            ts.append(d)
            time.sleep(0.3)  # commands go on between migrations
            rc, out, err = migrate(t, addr)
            check(rc == 0, f"migration {i}: {err}")
            t.t.finish()
            t = d
        r = t.t.finish(timeout=60)
        loop = [x for x in r.reports if x.startswith("cvq loop commands=")]
        check(r.rc == 0 and loop and " wrong=0 " in loop[0], "a control command was not answered after a "
              "migration", r)
        print(f"# {loop[0]} across 3 migrations with svq=off")
    finally:
        s.close()
        for x in ts:
            x.kill()


def test_device_restarted_during_svq_off_migration_fails_it(ctx):
    """svq=off: the guest resets and restarts its device while a migration
    (held in pre-copy for 3 s) has it frozen. The restarted device runs
    without the dirty log, so the migration must fail, saying why, and the
    source run on with a working device."""
    s, peer = peer_socket(ctx)
    ts = []
    try:
        net = lambda n: ["--net", f"vdpa-sim,socket={ctx.path(n + '.dev')},peer={peer},mac={MAC},svq=off"]
        t = Tern(ctx, "r0", ["--kernel", ctx.guest_elf, "--memory", "64M", "--cmdline",
                             "test=net-cvq loop=6 restart=1"] + net("r0"), env={"TERN_TEST_FAULTS": "migrate-stall=active"})
        ts.append(t)
        t.t.wait_report("cvq loop started", timeout=30)
        addr = f"unix:{ctx.path('r1.mig')}"
        d = destination(ctx, "r1", addr, net("r1"))
        ts.append(d)
        rc, out, err = migrate(t, addr)
        check(rc == 1 and "without dirty logging" in err, f"the migration should fail: rc={rc} {err!r}")
        check(t.status()["state"] == "running", "the source must run on")
        never_ran(d, "a device ran unlogged")
        r = t.t.finish(timeout=60)
        loop = [x for x in r.reports if x.startswith("cvq loop commands=")]
        check(r.rc == 0 and loop and " wrong=0 " in loop[0] and not loop[0].endswith("restarts=0"),
              "the source's guest after the failed migration", r)
        print(f"# {loop[0]}; the migration failed: {err.strip().splitlines()[-1]}")
    finally:
        s.close()
        for x in ts:
            x.kill()
