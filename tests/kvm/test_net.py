"""virtio-net over tern's software vDPA device: two tern processes joined by
a UNIX datagram socket pair exchange frames, single- and multiqueue; CVQ
commands; a guest that scribbles on its rings gets NEEDS_RESET while tern
keeps running."""
import os

from ternlib import check, num, spawn_tern

MAC_A = "52:54:00:aa:00:01"
MAC_B = "52:54:00:bb:00:02"


def net_arg(ctx, me, peer, mac, queues=1, extra=""):
    return (f"vdpa-sim,socket={ctx.path(me)},peer={ctx.path(peer)},mac={mac},queues={queues}"
            + (f",{extra}" if extra else ""))


def pair(ctx, test_a, test_b, queues=1, timeout=120):
    """Runs two VMs joined back to back; returns both Runs."""
    a = spawn_tern(ctx, ["--kernel", ctx.guest_elf, "--memory", "128M",
                         "--net", net_arg(ctx, "a.sock", "b.sock", MAC_A, queues),
                         "--cmdline", f"{test_a} peer={MAC_B}"], reports="a.txt")
    b = spawn_tern(ctx, ["--kernel", ctx.guest_elf, "--memory", "128M",
                         "--net", net_arg(ctx, "b.sock", "a.sock", MAC_B, queues),
                         "--cmdline", f"{test_b} peer={MAC_A}"], reports="b.txt")
    ra = a.finish(timeout=timeout)
    rb = b.finish(timeout=timeout)
    return ra, rb


def check_xchg(r, count, queues):
    f = [x for x in r.fields("net") if "rx_ok" in x]
    check(f, "guest made no 'net rx_ok=' report", r)
    f = f[-1]
    check(r.rc == 0, "frame exchange failed", r)
    check(num(f["rx_ok"]) == count * queues, f"received {f['rx_ok']} good frames, expected {count * queues}", r)
    for k in ("rx_bad", "rx_dup", "rx_gap"):
        check(num(f[k]) == 0, f"{k}={f[k]}", r)
    check(num(f["tx"]) == count * queues, f"sent {f['tx']}", r)


def test_exchange_1e5_frames_single_queue(ctx):
    n = 100000
    ra, rb = pair(ctx, f"test=net-xchg count={n} queues=1 size=128", f"test=net-xchg count={n} queues=1 size=128")
    check_xchg(ra, n, 1)
    check_xchg(rb, n, 1)


test_exchange_1e5_frames_single_queue.no_asan = True  # 10^5 frames: the plain build only


def test_exchange_4_queue_pairs(ctx):
    n = 25000 if not ctx.asan else 2000
    ra, rb = pair(ctx, f"test=net-xchg count={n} queues=4 size=256", f"test=net-xchg count={n} queues=4 size=256",
                  queues=4)
    check_xchg(ra, n, 4)
    check_xchg(rb, n, 4)


def test_exchange_sizes(ctx):
    for size in (64, 1514):
        ra, rb = pair(ctx, f"test=net-xchg count=500 queues=1 size={size}",
                      f"test=net-xchg count=500 queues=1 size={size}")
        check_xchg(ra, 500, 1)
        check_xchg(rb, 500, 1)


def test_cvq_commands_acked(ctx):
    t = spawn_tern(ctx, ["--kernel", ctx.guest_elf, "--memory", "64M",
                         "--net", net_arg(ctx, "a.sock", "nobody.sock", MAC_A, 2), "--cmdline", "test=net-cvq"])
    r = t.finish(timeout=60)
    check(r.rc == 0, "CVQ commands were not all acknowledged", r)
    acks = [x for x in r.reports if x.startswith("cvq ")]
    check(len(acks) >= 5, f"expected one report per command class, got {acks}", r)


def test_scribbled_ring_needs_reset(ctx):
    t = spawn_tern(ctx, ["--kernel", ctx.guest_elf, "--memory", "64M",
                         "--net", net_arg(ctx, "a.sock", "nobody.sock", MAC_A), "--cmdline", "test=net-scribble"])
    r = t.finish(timeout=60)
    check(r.rc == 0, "tern must keep running and the guest finish", r)
    st = [num(x["status"]) for x in r.fields("net") if list(x) == ["status"]]
    check(st and st[0] & 0x40, f"device status {st} lacks NEEDS_RESET", r)
    reset = [x for x in r.reports if x.startswith("net reset status=")]
    check(reset == ["net reset status=0x0"], f"the device did not come back from a reset: {reset}", r)


def test_net_info(ctx):
    t = spawn_tern(ctx, ["--kernel", ctx.guest_elf, "--memory", "64M",
                         "--net", net_arg(ctx, "a.sock", "nobody.sock", MAC_A, 3), "--cmdline", "test=net-info"])
    r = t.finish(timeout=60)
    check(r.rc == 0, "net-info failed", r)
    f = r.fields("net")[0]
    check(f["mac"] == MAC_A, f"guest sees MAC {f['mac']}, tern was given {MAC_A}", r)
    check(num(f["max_pairs"]) == 3, "max_virtqueue_pairs differs", r)


def test_bad_net_specs(ctx):
    from ternlib import run_tern, one_error_line
    for spec, needle in (("vdpa-foo", "unknown backend"), ("vdpa-sim", "socket=PATH"),
                         ("vdpa-sim,socket=/x", "socket=PATH"), ("vdpa-sim,tap=t0,socket=/a,peer=/b", "exclusive"),
                         ("vdpa-sim,tap=t0,queues=17", "queues"), ("vdpa-sim,tap=t0,mac=01:00:00:00:00:01", "unicast"),
                         ("vdpa-sim,tap=t0,frob=1", "unknown key")):
        r = run_tern(ctx, ["--kernel", ctx.guest_elf, "--net", spec], testdev=False)
        check(r.rc == 1 and needle in one_error_line(r), f"--net {spec}: want an error about {needle!r}", r)
    r = run_tern(ctx, ["--kernel", ctx.guest_elf, "--net", f"vdpa-sim,socket={ctx.tmp},peer=/b"], testdev=False)
    check(r.rc == 1 and "not a socket" in one_error_line(r), "binding over a directory must fail", r)


def test_features_withheld_still_work(ctx):
    """Without MQ and CTRL_VQ (features-off) the guest falls back to one
    pair and no control queue, and frames still flow."""
    off = (1 << 22) | (1 << 17) | (1 << 18) | (1 << 19) | (1 << 20) | (1 << 21) | (1 << 23) | (1 << 2)
    a = spawn_tern(ctx, ["--kernel", ctx.guest_elf, "--memory", "64M", "--net",
                         net_arg(ctx, "a.sock", "b.sock", MAC_A, 4, f"features-off={off:#x}"),
                         "--cmdline", f"test=net-xchg count=2000 queues=1 peer={MAC_B}"], reports="a.txt")
    b = spawn_tern(ctx, ["--kernel", ctx.guest_elf, "--memory", "64M", "--net",
                         net_arg(ctx, "b.sock", "a.sock", MAC_B, 4, f"features-off={off:#x}"),
                         "--cmdline", f"test=net-xchg count=2000 queues=1 peer={MAC_A}"], reports="b.txt")
    ra, rb = a.finish(timeout=60), b.finish(timeout=60)
    check_xchg(ra, 2000, 1)
    check_xchg(rb, 2000, 1)
    info = spawn_tern(ctx, ["--kernel", ctx.guest_elf, "--memory", "64M", "--net",
                            net_arg(ctx, "c.sock", "d.sock", MAC_A, 4, f"features-off={off:#x}"),
                            "--cmdline", "test=net-info"], reports="c.txt").finish(timeout=60)
    feats = int(info.fields("net")[0]["features"], 16)
    check(feats & off == 0, f"withheld features offered anyway: {feats:#x}", info)


def test_reset_without_iotlb_persist(ctx):
    """With IOTLB_PERSIST withheld, a device reset drops its mappings and
    tern must map guest RAM again: the device works after the reset."""
    t = spawn_tern(ctx, ["--kernel", ctx.guest_elf, "--memory", "64M",
                         "--net", net_arg(ctx, "a.sock", "a.sock", MAC_A, 1, "backend-off=0x100"),
                         "--cmdline", f"test=net-scribble"])
    r = t.finish(timeout=60)
    check(r.rc == 0 and "net reset status=0x0" in r.reports, "reset path failed", r)
    # and a looped-back exchange after boot-time reset works without PERSIST
    t = spawn_tern(ctx, ["--kernel", ctx.guest_elf, "--memory", "64M",
                         "--net", net_arg(ctx, "l.sock", "l.sock", MAC_A, 1, "backend-off=0x100"),
                         "--cmdline", f"test=net-xchg count=1000 peer={MAC_A}"], reports="l.txt")
    check_xchg(t.finish(timeout=60), 1000, 1)
