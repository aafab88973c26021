"""Control-queue commands take effect in the device: the guest sets receive
filters (test=net-filter) and a peer on the wire - this test, through the
socket wire and through a TAP interface - sends frames to each kind of
destination; what reaches the guest must match the filter."""
import os
import socket
import struct
import time

from ternlib import check, num, spawn_tern

MAC = "52:54:00:aa:00:07"
SRC = bytes.fromhex("525400dddddd")
DEST = {
    "own": (bytes.fromhex(MAC.replace(":", "")), None),
    "other": (bytes.fromhex("525400cccccc"), None),
    "bcast": (b"\xff" * 6, None),
    "mcast": (bytes.fromhex("01005e0000fb"), None),
    "v42": (bytes.fromhex(MAC.replace(":", "")), 42),
    "v43": (bytes.fromhex(MAC.replace(":", "")), 43),
}
BURST = 5
EXPECT = {
    0: dict(own=5, other=0, bcast=5, mcast=0, v42=0, v43=0),  # promiscuous off
    1: dict(own=5, other=5, bcast=5, mcast=5, v42=5, v43=5),  # promiscuous on
    2: dict(own=5, other=5, bcast=5, mcast=5, v42=0, v43=0),  # MAC tables {other}, {mcast}
    3: dict(own=5, other=0, bcast=5, mcast=0, v42=5, v43=0),  # VLAN 42 in the filter
}


def frame(dst, vid, flags=0):
    tag = struct.pack(">HH", 0x8100, vid) if vid is not None else b""
    body = struct.pack("<IHHII", 0x544E5246, 0, flags, 0, 0)
    f = dst + SRC + tag + struct.pack(">H", 0x88B5) + body
    return f + b"\0" * max(0, 64 - len(f))


def drive(t, send):
    """Answers each 'ready' report with the bursts and the END marker."""
    for phase in range(4):
        t.wait_report(f"filter phase={phase} ready", timeout=30)
        for dst, vid in DEST.values():
            for _ in range(BURST):
                send(frame(dst, vid))
        send(frame(DEST["own"][0], None, flags=2))
    return t.finish(timeout=30)


def check_counts(r):
    check(r.rc == 0, "net-filter failed", r)
    for phase, want in EXPECT.items():
        got = [f for f in r.fields("filter") if f.get("phase") == str(phase) and "own" in f]
        check(got, f"no result for phase {phase}", r)
        got = {k: num(got[0][k]) for k in want}
        check(got == want, f"phase {phase}: received {got}, filter says {want}", r)


def test_filter_over_socket(ctx):
    me = ctx.path("test.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(me)
    t = spawn_tern(ctx, ["--kernel", ctx.guest_elf, "--memory", "64M", "--cmdline", "test=net-filter",
                         "--net", f"vdpa-sim,socket={ctx.path('dev.sock')},peer={me},mac={MAC}"])
    try:
        r = drive(t, lambda f: s.sendto(f, ctx.path("dev.sock")))
    finally:
        s.close()
    check_counts(r)


def test_filter_over_tap(ctx):
    tap = f"ternt{os.getpid() % 10000}{int(ctx.asan)}"
    t = spawn_tern(ctx, ["--kernel", ctx.guest_elf, "--memory", "64M", "--cmdline", "test=net-filter",
                         "--net", f"vdpa-sim,tap={tap},mac={MAC}"])
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(f"/sys/class/net/{tap}") and time.monotonic() < deadline:
            time.sleep(0.01)
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        s.bind((tap, 0))
        r = drive(t, s.send)
        s.close()
    finally:
        if t.p.poll() is None:
            t.p.kill()
    check_counts(r)
    check(not os.path.exists(f"/sys/class/net/{tap}"), "the non-persistent TAP should vanish with tern")
