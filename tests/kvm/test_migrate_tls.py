"""Migration between hosts that trust each other only through certificates:
mutual TLS 1.3 (--tls-dir, GnuTLS), a listener that strangers cannot end
or block, VM identity (--expect-vm) and admission limits. Every refusal is
checked on both sides: the source says why and runs on, the destination
logs why and goes on waiting, and the real source then migrates."""
import os
import shutil
import socket
import ssl
import time

import migproxy as mp
import tlscerts
from migratelib import destination, finish_guest, free_port, migrate, source, still_running, still_waiting
from ternlib import check, run_tern


def tls_dest(ctx, name, port, tls_dir, extra=()):
    return destination(ctx, name, f"tcp:127.0.0.1:{port}", ["--tls-dir", tls_dir] + list(extra))


def refused_log(dst):
    """The destination's refusals so far are in its stderr, which is read
    only when it ends: the API's status says it still waits."""
    check(dst.alive() and dst.status()["state"] == "incoming", "the destination stopped waiting")


def test_tls_migration_and_every_refusal(ctx):
    root = ctx.path("pki")
    dst_dir, src_dir, ca = tlscerts.make_dirs(root)
    # the bad kinds: another CA's client, expired and not yet valid client
    # certificates, a client with no certificate at all, a server whose
    # certificate names another host
    other = os.path.join(root, "other-ca")
    tlscerts.make_ca(other, "a stranger's CA")
    wrong_ca = os.path.join(root, "wrong-ca")
    tlscerts.make_pair(wrong_ca, other, "client")
    # it trusts the real CA (the destination is genuine), but its own
    # certificate comes from the stranger's
    shutil.copyfile(os.path.join(ca, "ca-cert.pem"), os.path.join(wrong_ca, "ca-cert.pem"))
    expired = os.path.join(root, "expired")
    tlscerts.make_pair(expired, ca, "client", activation="2020-01-01 00:00:00", expiration="2021-01-01 00:00:00")
    future = os.path.join(root, "future")
    tlscerts.make_pair(future, ca, "client", activation="2099-01-01 00:00:00", expiration="2100-01-01 00:00:00")
    port = free_port()
    src = source(ctx)
    dst = tls_dest(ctx, "dst", port, dst_dir)
    to = f"tcp:127.0.0.1:{port}"
    try:
        # a stranger connects first and says nothing; another sends garbage
        silent = socket.create_connection(("127.0.0.1", port))
        junk = socket.create_connection(("127.0.0.1", port))
        junk.sendall(b"GET / HTTP/1.1\r\n\r\n" * 8)
        # a TLS client without a certificate (Python's ssl)
        ctxt = ssl.create_default_context(cafile=os.path.join(ca, "ca-cert.pem"))
        ctxt.check_hostname = False
        nocert = ctxt.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
        try:
            nocert.sendall(b"TERNMIGR")
            got = nocert.recv(64)
            check(not got, f"a client without a certificate got {got!r}")
        except (ssl.SSLError, ConnectionError):
            pass  # refused: the certificate is required
        nocert.close()
        for what, args, needle in (
                ("plain", [], "this destination takes only TLS"),
                ("another CA", ["--tls-dir", wrong_ca], "refused this side's certificate"),
                ("expired", ["--tls-dir", expired], "refused this side's certificate"),
                ("not yet valid", ["--tls-dir", future], "refused this side's certificate")):
            t0 = time.monotonic()
            rc, _, err = migrate(src, to, *args)
            check(rc == 1 and needle in err, f"{what}: {err!r}")
            check(time.monotonic() - t0 < 15, f"{what}: the refusal took {time.monotonic() - t0:.1f} s")
            still_running(src, 1)
            refused_log(dst)
        # the source's credentials are checked before anything is sent
        rc, _, err = migrate(src, to, "--tls-dir", ctx.path("nowhere"))
        check(rc == 1 and "ca-cert.pem" in err and "HTTP 400" in err, f"missing --tls-dir: {err!r}")
        rc, _, err = migrate(src, f"unix:{ctx.path('u.mig')}", "--tls-dir", src_dir)
        check(rc == 1 and "TLS is for tcp:" in err, f"TLS over unix: {err!r}")
        # the real source, while the silent stranger still holds its slot
        rc, out, err = migrate(src, to, "--tls-dir", src_dir)
        check(rc == 0 and out["state"] == "completed", f"the TLS migration: {err}")
        silent.close()
        junk.close()
        check(src.t.finish().rc == 0, "the source after the hand-over")
        r = finish_guest(dst, "the TLS destination")
        log = r.stderr
        for needle in ("does not speak TLS 1.3", "sent no certificate (it has none issued by this side's CA)",
                       "a plain tern source", "chain uses expired certificate",
                       "chain uses not yet valid certificate", "the source is authenticated (TLS1.3"):
            check(needle in log, f"the destination's log lacks {needle!r}:\n{log}")
        check(log.count("refused a connection") >= 7, f"not every refusal was logged:\n{log}")
    finally:
        src.kill()
        dst.kill()


def test_tls_peer_checks_of_the_source(ctx):
    """The source refuses a destination whose certificate does not name the
    host it connected to, or that speaks no TLS; it runs on."""
    root = ctx.path("pki2")
    dst_dir, src_dir, ca = tlscerts.make_dirs(root)
    nosan = os.path.join(root, "nosan")
    tlscerts.make_pair(nosan, ca, "server", san=False)
    src = source(ctx)
    try:
        port = free_port()
        dst = tls_dest(ctx, "dst-nosan", port, nosan)
        rc, _, err = migrate(src, f"tcp:127.0.0.1:{port}", "--tls-dir", src_dir)
        check(rc == 1 and "certificate is refused" in err and "does not match" in err, f"no SAN: {err!r}")
        still_running(src, 1)
        dst.kill()
        port = free_port()
        dst = destination(ctx, "dst-plain", f"tcp:127.0.0.1:{port}")
        rc, _, err = migrate(src, f"tcp:127.0.0.1:{port}", "--tls-dir", src_dir)
        check(rc == 1 and "does not speak TLS" in err, f"TLS to a plain destination: {err!r}")
        still_running(src, 1)
        still_waiting(dst, "TLS to a plain destination", "speaks TLS")
        r = run_tern(ctx, ["--incoming", f"unix:{ctx.path('x.mig')}", "--tls-dir", dst_dir], testdev=False)
        check(r.rc == 1 and "--tls-dir is for --incoming tcp:" in r.stderr, "TLS on a unix: listener", r)
    finally:
        src.kill()


def test_tls_bit_flips_and_cuts(ctx):
    """Bits flipped in the TLS stream fail the migration (the record's
    authentication, or the handshake), and so does a cut; the source runs
    on every time, with as many descriptors open as before."""
    import random
    rng = random.Random(11)
    dst_dir, src_dir, _ = tlscerts.make_dirs(ctx.path("pki3"))
    src = source(ctx)
    fds = lambda: len(os.listdir(f"/proc/{src.t.p.pid}/fd"))  # noqa: E731
    try:
        before = fds()
        for n in range(12):
            port = free_port()
            dst = tls_dest(ctx, f"flip{n}", port, dst_dir)
            kind = "cut" if n % 3 == 2 else "flip"
            off = rng.randrange(0, 4000) if n < 4 else rng.randrange(4000, 8 << 20)
            args = {"cut_at": off} if kind == "cut" else {"flip_at": off, "flip_bit": rng.randrange(8)}
            px = mp.Proxy(("tcp", free_port()), ("tcp", port), **args)
            rc, _, err = migrate(src, px.addr, "--tls-dir", src_dir)
            check(rc == 1, f"{kind} at byte {off}: the migration succeeded")
            still_running(src, 1)
            dst.kill()
        check(fds() == before, f"the source holds {fds()} descriptors, {before} before")
        finish_guest(src, "the source after 12 damaged TLS streams")
    finally:
        src.kill()


def test_expect_vm_and_limits(ctx):
    """--expect-vm admits only that VM, and a destination refuses a VM
    larger than it takes, before allocating anything; refused sources run
    on and the destination waits on."""
    src = source(ctx)
    try:
        vm_id = src.api.client_ok("info")["id"]
        check(len(vm_id) == 36, f"GET /vm's id: {vm_id!r}")
        addr = f"unix:{ctx.path('e.mig')}"
        other = "00000000-0000-4000-8000-000000000001"
        for name, extra, needle in (("other-vm", ["--expect-vm", other], "expects VM " + other),
                                    ("small", ["--max-memory", "32M"], "takes at most 32 MiB"),
                                    ("few-cpus", ["--max-cpus", "1"], "takes at most 1")):
            dst = destination(ctx, name, addr, extra)
            rc, _, err = migrate(src, addr)
            check(rc == 1 and needle in err, f"{name}: {err!r}")
            still_running(src, 1)
            still_waiting(dst, name, needle)
        dst = destination(ctx, "expected", addr, ["--expect-vm", vm_id, "--incoming-timeout", "60"])
        rc, out, err = migrate(src, addr)
        check(rc == 0, f"the expected VM: {err}")
        src.t.finish()
        check(dst.api.client_ok("info")["id"] == vm_id, "the VM changed its id in the migration")
        finish_guest(dst, "the expected VM's destination")
        # a wait with nobody coming ends at --incoming-timeout
        t0 = time.monotonic()
        r = run_tern(ctx, ["--incoming", f"unix:{ctx.path('t.mig')}", "--incoming-timeout", "1"], testdev=False)
        check(r.rc == 1 and "no migration arrived" in r.stderr and time.monotonic() - t0 < 10,
              "--incoming-timeout", r)
        r = run_tern(ctx, ["--kernel", ctx.guest_elf, "--vm-id", "not-a-uuid"], testdev=False)
        check(r.rc == 1 and "--vm-id" in r.stderr, "a bad --vm-id", r)
    finally:
        src.kill()


def test_unix_listener_spares_a_live_socket(ctx):
    """A second destination on a unix: path that a live one listens on is
    refused, and the first one's socket stays."""
    path = ctx.path("live.mig")
    dst = destination(ctx, "first", f"unix:{path}")
    try:
        r = run_tern(ctx, ["--incoming", f"unix:{path}"], testdev=False)
        check(r.rc == 1 and "in use by another process" in r.stderr, "a second listener", r)
        check(os.path.exists(path), "the live destination's socket was removed")
        check(dst.alive(), "the first destination stopped")
        src = source(ctx)
        try:
            rc, _, err = migrate(src, f"unix:{path}")
            check(rc == 0, f"the first destination after the second was refused: {err}")
            src.t.finish()
            finish_guest(dst, "the first destination")
        finally:
            src.kill()
    finally:
        dst.kill()


def test_four_tls_connections(ctx):
    """--connections 4 stripes RAM over four connections, each with its own
    TLS session, and the guest passes its page check on the destination. A
    source whose further connections never reach the destination (a proxy
    lets only the first through) fails and runs on; the destination refuses
    it once their time is up and takes the real source afterwards."""
    dst_dir, src_dir, _ = tlscerts.make_dirs(ctx.path("pki5"))
    src = source(ctx, memory="128M")
    port = free_port()
    dst = tls_dest(ctx, "four", port, dst_dir)
    to = f"tcp:127.0.0.1:{port}"
    try:
        px = mp.Proxy(("tcp", free_port()), ("tcp", port))
        rc, _, err = migrate(src, px.addr, "--tls-dir", src_dir, "--connections", "2")
        check(rc == 1, f"a migration whose second connection was refused succeeded: {err!r}")
        still_running(src, 1)
        # the admitted source waits for its second connection 5 s, then
        # it is refused and the wait goes on
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            rc, out, err = migrate(src, to, "--tls-dir", src_dir, "--connections", "4")
            if rc == 0 or "another source is already migrating" not in err:
                break
            time.sleep(0.5)
        check(rc == 0 and out["state"] == "completed" and out["connections"] == 4,
              f"the 4-connection TLS migration: {err} {out}")
        check(src.t.finish().rc == 0, "the source after the hand-over")
        log = finish_guest(dst, "the 4-connection destination").stderr
        check("the source opened 1 of its 2 connections" in log, f"the destination's log:\n{log}")
    finally:
        src.kill()
        dst.kill()


def join_record(session, index, count):
    import struct
    from test_migrate import crc32c
    head = b"TERNMIGR" + struct.pack("<HH", 1, 4)
    hello = head + struct.pack("<I", crc32c(head))
    rec = struct.pack("<IIQ", 3, 0, 24) + session + struct.pack("<II", index, count)
    return hello + rec + struct.pack("<I", crc32c(rec)) + b"\0" * 4


def test_a_strangers_join_is_refused(ctx):
    """A connection that claims to join a migration it does not belong to
    is refused when the real source arrives (or after 5 s without one), and
    the real source's three connections are the ones that carry the VM.
    --connections outside 1..16 is refused before anything is sent."""
    port = free_port()
    to = f"tcp:127.0.0.1:{port}"
    src = source(ctx)
    dst = destination(ctx, "joins", to)
    try:
        for bad in ("0", "17", "x"):
            rc, _, err = migrate(src, to, "--connections", bad)
            check(rc == 1 and "--connections" in err and "1..16" in err, f"--connections {bad}: {err!r}")
        stranger = socket.create_connection(("127.0.0.1", port))
        stranger.sendall(join_record(os.urandom(16), 1, 3))
        rc, out, err = migrate(src, to, "--connections", "3")
        check(rc == 0 and out["connections"] == 3, f"the 3-connection migration beside a stranger: {err}")
        stranger.settimeout(10)
        answer = stranger.recv(4096)
        check(b"joins another migration" in answer, f"the stranger was told {answer!r}")
        stranger.close()
        check(src.t.finish().rc == 0, "the source after the hand-over")
        log = finish_guest(dst, "the 3-connection destination").stderr
        check("refused a connection" in log and "joins another migration" in log, f"the log:\n{log}")
    finally:
        src.kill()
        dst.kill()
