"""Helpers for the live-migration tests: tern processes with an API socket,
a destination waiting with --incoming, `tern migrate`, and the page-stamp
guest's checks."""
import json
import signal
import os
import socket
import subprocess
import time

from ternlib import TestFailure, check, spawn_tern
from test_api import Api, wait_socket
from test_snapshot import stamp_passes, wait_passes

STAMP = "stamp mb=16 hot=4"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def listening(port):
    """Whether something listens on 127.0.0.1:port (from /proc, so that no
    connection is spent on finding out)."""
    want = f":{port:04X}"
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(f) as fh:
                for line in fh.readlines()[1:]:
                    cols = line.split()
                    if cols[1].endswith(want) and cols[3] == "0A":
                        return True
        except OSError:
            pass
    return False


class Tern:
    """A tern run with an API socket; api is its test_api.Api."""

    def __init__(self, ctx, name, args, env=None, prefix=()):
        self.ctx, self.name = ctx, name
        self.sock = ctx.path(f"{name}.sock")
        saved = dict(os.environ)
        if env:
            os.environ.update(env)
        try:
            self.t = spawn_tern(ctx, list(args) + ["--api-sock", self.sock], reports=f"{name}.txt",
                                console=ctx.path(f"{name}.console"), prefix=prefix)
        finally:
            os.environ.clear()
            os.environ.update(saved)
        wait_socket(self.sock, self.t.p)
        self.api = Api.attach(ctx, self.sock, self.t)

    def reports(self):
        return self.t.reports()

    def alive(self):
        return self.t.p.poll() is None

    def status(self):
        return self.api.client_ok("status")

    def migration(self):
        return self.api.client_ok("migration")

    def kill(self):
        self.api.kill()


def source(ctx, name="src", stamp=STAMP, memory="64M", cpus=2, extra=(), env=None):
    s = Tern(ctx, name, ["--kernel", ctx.guest_elf, "--memory", memory, "--cpus", str(cpus),
                         "--cmdline", f"test={stamp}"] + list(extra), env=env)
    wait_passes(s.t, 1)
    return s


def destination(ctx, name, addr, extra=(), env=None):
    """A tern waiting for a migration on addr, once it listens."""
    d = Tern(ctx, name, ["--incoming", addr] + list(extra), env=env)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if addr.startswith("unix:") and os.path.exists(addr[5:]):
            return d
        if addr.startswith("tcp:") and listening(int(addr.rsplit(":", 1)[1])):
            return d
        if not d.alive():
            raise TestFailure(f"destination {name} exited before listening: {d.t.finish()}")
        time.sleep(0.01)
    raise TestFailure(f"destination {name} never listened on {addr}")


def migrate(src, to, *args):
    """Runs `tern migrate`; returns (rc, result JSON or None, stderr)."""
    p = subprocess.run([src.ctx.tern, "migrate", "--api-sock", src.sock, "--to", to] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    out = json.loads(p.stdout) if p.returncode == 0 and p.stdout.strip() else None
    return p.returncode, out, p.stderr


def wait_state(t, want, timeout=20):
    """Waits until the source's migration is in one of the states want."""
    deadline = time.monotonic() + timeout
    st = None
    while time.monotonic() < deadline:
        st = t.migration()["state"]
        if st in want:
            return st
        time.sleep(0.01)
    raise TestFailure(f"migration never reached {want}; it is {st}")


def still_running(s, more=2, what="the source"):
    """The source VM runs on and its guest keeps passing its page check."""
    if not s.alive():
        raise TestFailure(f"{what}: the source exited: {s.t.finish()}")
    st = s.status()
    check(st["state"] == "running", f"{what}: the source VM is {st}; its migration: {s.migration()}")
    wait_passes(s.t, len(stamp_passes(s.t)) + more)


def finish_guest(t, what):
    """Ends a stamp guest with 'q' after a whole checked pass; it must pass."""
    wait_passes(t.t if hasattr(t, "t") else t, 2)
    tt = t.t if hasattr(t, "t") else t
    tt.send(b"q")
    r = tt.finish()
    check(r.rc == 0 and any(x.startswith("stamp ok") for x in r.reports), f"{what} failed its page check", r)
    return r


def still_waiting(d, what, needle):
    """A destination that refused a connection goes on waiting: it is alive
    and serves its API; stopped now, it exits 1 having logged the refusal
    with needle in it, and its guest never ran."""
    check(d.alive(), f"{what}: the destination stopped waiting")
    check(d.status()["state"] == "incoming", f"{what}: the destination is {d.status()}")
    d.t.p.send_signal(signal.SIGTERM)
    r = d.t.finish(timeout=30)
    refusals = [l for l in r.stderr.splitlines() if "refused a connection" in l]
    check(r.rc == 1 and any(needle in l for l in refusals), f"{what}: refusals logged {refusals}", r)
    check(not any(x.startswith("stamp") for x in r.reports), f"{what}: the destination's guest ran", r)
    return r


def never_ran_or_waits(d, what):
    """After a failed migration: a destination that had admitted the source
    exits 1 without having run the guest; one whose connection broke
    before it was admitted (in the header or configuration) refused it and
    waits on. Which one depends on where the stream broke."""
    deadline = time.monotonic() + 3
    while d.alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    if d.alive():
        return still_waiting(d, what, "")
    return never_ran(d, what)


def never_ran(d, what):
    """A destination that failed exits 1 and its guest never ran a step."""
    r = d.t.finish(timeout=30)
    check(r.rc == 1, f"{what}: the destination should fail", r)
    check(not any(x.startswith("stamp") for x in r.reports), f"{what}: the destination's guest ran", r)
    return r


ECHO_MAC = "52:54:00:ee:00:01"


def echo_source(ctx, wire, peer, name="src"):
    """A net-echo guest (test_snapshot.echo_round talks to it) on the
    software device's socket wire `wire`, its frames sent to `peer`;
    returns its Tern once the guest is ready."""
    t = Tern(ctx, name, ["--kernel", ctx.guest_elf, "--memory", "64M", "--cmdline", "test=net-echo",
                         "--net", f"vdpa-sim,socket={wire},peer={peer},mac={ECHO_MAC}"])
    t.t.wait_report("net echo ready")
    return t


def finish_echo(t, what):
    """Ends a net-echo guest with 'q'; it must exit 0 with its count."""
    t.t.send(b"q")
    r = t.t.finish()
    check(r.rc == 0 and any(x.startswith("net echo count=") for x in r.reports), what, r)
    return r
