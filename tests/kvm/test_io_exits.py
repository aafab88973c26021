"""An access tern handled but KVM had not yet completed must never be saved
half done (a vCPU's state is whole only after it re-enters KVM_RUN). The
test guest (test=io-seq) runs COM1 in loopback, writing two bytes per round
and reading them back, each checked, and reports "io-seq n=N" through the
test device (one MMIO write) every 512 rounds: nearly every instant of its
life is a port exit. 100 snapshot (--no-resume) and restore cycles, then 20
migrations, each at a random moment, must lose or double no byte (the
guest would report an error and exit 1) and no MMIO write (the N reported
across the whole chain of terns must be 512, 1024, 1536, ... exactly: a
report written twice would repeat one)."""
import random
import time

from migratelib import Tern, destination, migrate
from ternlib import check

CYCLES = 100
MIGRATIONS = 20
EVERY = 512


def io_reports(t):
    """The N of t's reports so far, and any error report."""
    ns, errors = [], []
    for r in t.reports():
        if r.startswith("io-seq n="):
            ns.append(int(r.split("=", 1)[1]))
        elif "error" in r:
            errors.append(r)
    return ns, errors


def collect(t, chain, what):
    ns, errors = io_reports(t)
    check(not errors, f"{what}: the guest saw a lost or doubled access: {errors}")
    chain.extend(ns)
    want = [EVERY * (i + 1) for i in range(len(chain))]
    check(chain == want, f"{what}: reports across the chain {chain[-8:]} (of {len(chain)}), want ...{want[-8:]}: "
                         "a doubled or lost MMIO write")


def wait_progress(t, chain, what):
    """Waits until t's guest has reported once (so it ran after its start)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        ns, errors = io_reports(t)
        check(not errors, f"{what}: the guest saw a lost or doubled access: {errors}")
        check(t.alive(), f"{what}: the guest's tern exited: {t.reports()[-3:]}")
        if ns:
            return
        time.sleep(0.005)
    raise AssertionError(f"{what}: no io-seq report; reports {t.reports()[-5:]}")


def test_no_access_lost_or_doubled_across_snapshots_and_migrations(ctx):
    rng = random.Random(17)
    t = Tern(ctx, "io0", ["--kernel", ctx.guest_elf, "--memory", "32M", "--cmdline",
                          f"test=io-seq every={EVERY}"])
    t.t.wait_report(f"io-seq ready every={EVERY}")
    chain = []
    snap = ctx.path("snap")
    for i in range(CYCLES):
        wait_progress(t, chain, f"cycle {i}")
        time.sleep(rng.uniform(0, 0.02))
        t.api.client_ok("snapshot", "--path", snap, "--no-resume")
        t.api.client("shutdown")
        t.t.finish()
        collect(t, chain, f"cycle {i}")
        t = Tern(ctx, f"io{i + 1}", ["--restore", snap])
    for j in range(MIGRATIONS):
        wait_progress(t, chain, f"migration {j}")
        time.sleep(rng.uniform(0, 0.02))
        addr = f"unix:{ctx.path(f'm{j}.mig')}"
        d = destination(ctx, f"mig{j}", addr)
        rc, out, err = migrate(t, addr)
        check(rc == 0, f"migration {j}: {err}")
        t.t.finish()
        collect(t, chain, f"migration {j}")
        t = d
    wait_progress(t, chain, "the last destination")
    time.sleep(0.05)
    t.api.client("shutdown")
    t.t.finish()
    collect(t, chain, "the last destination")
    check(len(chain) > CYCLES + MIGRATIONS, f"only {len(chain)} reports across the chain")
    print(f"# {CYCLES} snapshot/restore cycles and {MIGRATIONS} migrations: {chain[-1]} rounds "
          f"({2 * chain[-1]} bytes each way through COM1, {len(chain)} MMIO reports), none lost or doubled")
