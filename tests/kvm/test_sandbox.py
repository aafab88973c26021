"""The sandbox (docs/security.md): every thread of a running tern is under
a seccomp filter of its kind, with no_new_privs; a system call outside a
thread's filter ends tern with a message naming the thread and the call
(the test interface's seccomp-violate=KIND makes a thread of that kind
issue one), and with --seccomp log the call goes through, the kernel logs
it, and the guest runs on. The rest of the KVM suite runs with the
filters on (tern's default), so a call missing from a filter fails it."""
import os
import subprocess

from migratelib import STAMP, Tern, destination, finish_guest, migrate, source, still_running
from ternlib import check


def thread_status(pid):
    """{thread name: (Seccomp, NoNewPrivs)} of every thread of pid."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                fields = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
        except OSError:
            continue  # gone meanwhile
        out[f"{fields['Name']}/{tid}"] = (fields.get("Seccomp", "?").strip(), fields.get("NoNewPrivs", "?").strip())
    return out


def test_every_thread_is_filtered(ctx):
    """A tern with a vCPU, the software vDPA device, a disk, its console
    and its API: Seccomp 2 and NoNewPrivs 1 on every thread; with
    --seccomp off, none."""
    wire = ctx.path("sb.wire")
    img = ctx.path("sb.img")
    with open(img, "wb") as f:
        f.truncate(1 << 20)
    extra = ["--net", f"vdpa-sim,socket={wire},peer={wire}", "--disk", f"path={img}"]
    t = source(ctx, "filtered", extra=extra)
    try:
        threads = thread_status(t.t.p.pid)
        names = {n.split("/")[0] for n in threads}
        for want in ("tern", "vcpu0", "vcpu1", "net-device", "console"):
            check(want in names, f"no thread named {want}: {sorted(names)}")
        bad = {n: s for n, s in threads.items() if s != ("2", "1")}
        check(not bad, f"threads without a filter or no_new_privs: {bad}")
        still_running(t, 1)
    finally:
        t.kill()
    t = source(ctx, "unfiltered", extra=["--seccomp", "off"])
    try:
        threads = thread_status(t.t.p.pid)
        check(all(s[0] == "0" for s in threads.values()), f"--seccomp off: {threads}")
    finally:
        t.kill()
    print(f"# {len(threads)} threads checked unfiltered, all filtered threads: {sorted(names)}")


def expect_killed(ctx, kind, run, thread):
    """run() makes a thread of kind violate; tern must end with the message."""
    r = run()
    check(r.rc == 1, f"{kind}: tern exited {r.rc}", r)
    want = f"seccomp: thread '{thread}' made system call getsid (124), which its filter does not allow"
    check(want in r.stderr and "--seccomp log" in r.stderr, f"{kind}: the message: {r.stderr[-600:]!r}")


def dmesg_count(needle):
    p = subprocess.run(["dmesg"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return p.stdout.count(needle) if p.returncode == 0 else None


def test_a_call_outside_a_filter_ends_tern(ctx):
    """For each kind of thread: its forbidden call ends tern with the
    documented message; with --seccomp log the same call goes through,
    the kernel logs it, and the guest runs on."""
    from ternlib import spawn_tern
    wire = ctx.path("v.wire")
    base = ["--kernel", ctx.guest_elf, "--memory", "64M", "--cmdline", f"test={STAMP}",
            "--net", f"vdpa-sim,socket={wire},peer={wire}"]
    saved = dict(os.environ)
    logged = 0
    try:
        # the threads that run from the start
        for kind, thread in (("main", "tern"), ("vcpu", "vcpu0"), ("device", "net-device"),
                             ("console", "console")):
            os.environ["TERN_TEST_FAULTS"] = f"seccomp-violate={kind}"
            expect_killed(ctx, kind, lambda: spawn_tern(ctx, base, reports=f"v-{kind}.txt",
                                                        console=ctx.path(f"v-{kind}.console")).finish(timeout=30),
                          thread)
            # logged, not fatal: the guest passes its page check
            before = dmesg_count("syscall=124 ")
            os.environ["TERN_TEST_FAULTS"] = f"seccomp-violate={kind}"
            t = Tern(ctx, f"log-{kind}", base + ["--seccomp", "log"])
            os.environ.clear()
            os.environ.update(saved)
            try:
                still_running(t, 1)
                finish_guest(t, f"{kind} with --seccomp log")
            finally:
                t.kill()
            after = dmesg_count("syscall=124 ")
            if before is not None:
                logged += after - before
        # the kernel rate-limits these records (printk), so one run's may
        # be dropped; four runs' cannot all be
        check(logged > 0 or dmesg_count("x") is None, "the kernel logged no seccomp record for getsid")
        os.environ.clear()
        os.environ.update(saved)
        # the migration thread: when a migration starts
        addr = f"unix:{ctx.path('v.mig')}"
        src = source(ctx, "v-mig", env={"TERN_TEST_FAULTS": "seccomp-violate=migration"})
        dst = destination(ctx, "v-mig-dst", addr)
        try:
            migrate(src, addr, "--no-wait")
            r = src.t.finish(timeout=30)
            check(r.rc == 1 and "seccomp: thread 'migration' made system call getsid (124)" in r.stderr,
                  f"migration: {r.stderr[-600:]!r}")
        finally:
            src.kill()
            dst.kill()
        # the API server's thread: from its first connection
        src = source(ctx, "v-api", env={"TERN_TEST_FAULTS": "seccomp-violate=api"})
        try:
            src.api.client("status")
            r = src.t.finish(timeout=30)
            check(r.rc == 1 and "seccomp: thread 'api' made system call getsid (124)" in r.stderr,
                  f"api: {r.stderr[-600:]!r}")
        finally:
            src.kill()
        # the throttle's thread: when a migration slows the guest
        src = source(ctx, "v-thr", stamp="stamp mb=32 hot=32", env={"TERN_TEST_FAULTS": "seccomp-violate=throttle"})
        dst = destination(ctx, "v-thr-dst", addr)
        try:
            migrate(src, addr, "--bandwidth", "64M", "--max-passes", "30")
            r = src.t.finish(timeout=30)
            check(r.rc == 1 and "seccomp: thread 'throttle' made system call getsid (124)" in r.stderr,
                  f"throttle: {r.stderr[-600:]!r}")
        finally:
            src.kill()
            dst.kill()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_reports_to_a_character_device(ctx):
    """--test-device=/dev/null: the guest's first report, written from a
    vCPU, must not make stdio probe the device (isatty's TCGETS is outside
    a vCPU's filter)."""
    from ternlib import run_tern
    r = run_tern(ctx, ["--kernel", ctx.guest_elf, "--memory", "64M", "--cmdline", "test=exit",
                       "--test-device=/dev/null"], testdev=False)
    check(r.rc == 0 and "seccomp" not in r.stderr, "reports to /dev/null", r)
