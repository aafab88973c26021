"""Snapshot directories as users and hostile neighbours leave them: the diff
guard that must not switch itself off (a 33rd diff, a base replaced by
another VM or unreadable, a chain directory reached through a symlink),
two writers in one directory, links and FIFOs where tern's files go, a
chain of parents that loops, and relative paths given to the client."""
import os
import shutil
import subprocess
import time

import snapfile
from ternlib import check, one_error_line, run_tern
from migratelib import Tern
from test_snapshot_diff import check_restores, snap, tracked, wait_more


def state_memory(d):
    """The memory file d's state names, as restore reads it."""
    return snapfile.get_config(os.path.join(d, "state"), "memory-file")


def stamp_vm(ctx, name):
    t = Tern(ctx, name, ["--kernel", ctx.guest_elf, "--memory", "64M", "--cmdline", "test=stamp mb=16 hot=4"])
    t.t.wait_report("stamp pass=1")
    return t


def refused(api, path, why, diff=True):
    p = api.client("snapshot", "--path", path, *(["--diff"] if diff else []))
    check(p.returncode == 1 and why in p.stderr, f"snapshot into {os.path.basename(path)}: {p.stderr!r}")
    check(api.client_ok("status")["state"] == "running", "a refused snapshot must leave the VM running")


def test_diff_chain_guard(ctx):
    """32 diffs over one full snapshot restore; a 33rd is refused (it could
    never be restored); a diff into a directory of the chain is refused
    also through a symlink to it; a diff whose base another VM replaced,
    or whose base no longer reads back, is refused; each message says
    why, and the VM runs on."""
    api = tracked(ctx)
    try:
        snap(api, ctx.path("g0"), False)
        for i in range(1, 33):
            snap(api, ctx.path(f"d{i}"), True)
        refused(api, ctx.path("d33"), "at most 32 can be restored")
        check(not os.path.exists(ctx.path("d33")), "a refused diff created its directory")
        os.symlink(ctx.path("g0"), ctx.path("alias"))
        snap(api, ctx.path("g1"), False)  # a new base: g1
        snap(api, ctx.path("e1"), True)
        os.symlink(ctx.path("g1"), ctx.path("alias1"))
        refused(api, ctx.path("alias1"), "would replace a snapshot it depends on")
        # another VM replaces the base: no diff on it can be restored
        other = stamp_vm(ctx, "other")
        try:
            snap(other.api, ctx.path("e1"), False)
            other.api.shutdown()
        finally:
            other.kill()
        refused(api, ctx.path("e2"), "was replaced since this VM saved or restored it")
        # a base that no longer reads back
        snap(api, ctx.path("g2"), False)
        os.unlink(os.path.join(ctx.path("g2"), "state"))
        refused(api, ctx.path("e3"), "cannot be read back whole")
        wait_more(api.t, 1)
        api.shutdown()
    finally:
        api.kill()
    check_restores(ctx, ctx.path("d32"), 32)


def test_two_writers_one_directory(ctx):
    """Two VMs snapshot into one directory at the same moment, 15 rounds:
    each writer either succeeds or is refused naming the other writer;
    afterwards the state names the one memory file there (nothing of the
    other writer left half done), and the last snapshot restores."""
    a, b = stamp_vm(ctx, "a"), stamp_vm(ctx, "b")
    d = ctx.path("shared")
    wins = refusals = 0
    try:
        for rnd in range(15):
            ps = [subprocess.Popen([ctx.tern, "snapshot", "--api-sock", x.sock, "--path", d],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for x in (a, b)]
            for p in ps:
                out, err = p.communicate(timeout=60)
                if p.returncode == 0:
                    wins += 1
                else:
                    check("another snapshot is being written" in err, f"round {rnd}: {err!r}")
                    refusals += 1
            files = sorted(os.listdir(d))
            mem = [f for f in files if f.startswith("memory.")]
            check(files == sorted(["state"] + mem) and len(mem) == 1 and state_memory(d) == mem[0],
                  f"round {rnd}: the directory holds {files}, its state names {state_memory(d)}")
        a.api.shutdown()
        b.api.shutdown()
    finally:
        a.kill()
        b.kill()
    check(wins >= 15, f"{wins} snapshots succeeded in 15 rounds")
    print(f"# 15 rounds of two writers: {wins} snapshots written, {refusals} refused (one writer at a time)")
    check_restores(ctx, d, 0)


def test_links_and_fifos_are_not_followed(ctx):
    """A symlink left where the state goes is replaced, its target never
    written; a FIFO named state or memory.* is refused at once (it would
    block open() for ever); a diff whose chain of parents loops is refused
    at once; a relative --path is the client's working directory's."""
    victim = ctx.path("victim")
    with open(victim, "w") as f:
        f.write("precious")
    d = ctx.path("s")
    os.mkdir(d)
    os.symlink(victim, os.path.join(d, "state"))
    os.symlink(victim, os.path.join(d, "state.tmp"))  # where tern once wrote, O_TRUNC
    api = tracked(ctx)
    try:
        snap(api, d, False)
        with open(victim) as f:
            check(f.read() == "precious", "the snapshot wrote through a symlink")
        check(not os.path.islink(os.path.join(d, "state")), "state is still the symlink")
        os.unlink(os.path.join(d, "state.tmp"))
        # relative to the client
        sub = ctx.path("cwd")
        os.mkdir(sub)
        p = subprocess.run([ctx.tern, "snapshot", "--api-sock", api.sock, "--path", "rel"], cwd=sub,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        check(p.returncode == 0 and os.path.exists(os.path.join(sub, "rel", "state")),
              f"relative --path: {p.stderr!r}, {os.listdir(sub)}")
        snap(api, ctx.path("l1"), True)   # parent: rel
        snap(api, ctx.path("l2"), True)   # parent: l1
        api.shutdown()
    finally:
        api.kill()
    # l1's parent made to be l2: l2 -> l1 -> l2 -> ...
    snapfile.set_config(os.path.join(ctx.path("l1"), "state"), "parent", ctx.path("l2"))
    t0 = time.monotonic()
    r = run_tern(ctx, ["--restore", ctx.path("l2")], testdev=False, timeout=30)
    check(r.rc == 1 and "loops back" in one_error_line(r), "a looping chain", r)
    check(time.monotonic() - t0 < 10, "the loop was not refused at once")
    # FIFOs where files are read
    f = ctx.path("f")
    os.mkdir(f)
    os.mkfifo(os.path.join(f, "state"))
    r = run_tern(ctx, ["--restore", f], testdev=False, timeout=20)
    check(r.rc == 1 and "not a regular file" in one_error_line(r), "a FIFO named state", r)
    mem = state_memory(d)
    shutil.copytree(d, ctx.path("m"))
    os.unlink(os.path.join(ctx.path("m"), mem))
    os.mkfifo(os.path.join(ctx.path("m"), mem))
    r = run_tern(ctx, ["--restore", ctx.path("m")], testdev=False, timeout=20)
    check(r.rc == 1 and "not a regular file" in one_error_line(r), "a FIFO as the memory file", r)


def test_parent_outside_the_tree_needs_the_users_word(ctx):
    """A diff whose parent lies outside the directory that holds the diff's
    own (a crafted state file can name any directory, and so map another
    VM's memory into this guest) is refused, saying how to allow it;
    --restore-parents naming a directory over both restores it."""
    os.mkdir(ctx.path("treeA"))
    os.mkdir(ctx.path("treeB"))
    api = tracked(ctx)
    try:
        snap(api, ctx.path("treeA/base"), False)
        snap(api, ctx.path("treeB/d1"), True)
        api.shutdown()
    finally:
        api.kill()
    r = run_tern(ctx, ["--restore", ctx.path("treeB/d1")], testdev=False)
    check(r.rc == 1 and "is not under" in one_error_line(r) and "--restore-parents" in one_error_line(r),
          "a parent in another tree", r)
    check_restores(ctx, ctx.path("treeB/d1"), 1, extra=["--restore-parents", ctx.path("")])
    r = run_tern(ctx, ["--kernel", ctx.guest_elf, "--restore-parents", "/"], testdev=False)
    check(r.rc == 1 and "--restore-parents goes with --restore" in one_error_line(r), "without --restore", r)


def test_durability_order(ctx):
    """The order of the file system calls that makes a crash at any moment
    leave the old snapshot or the new one, whole (docs/state-format.md),
    traced with strace: a new directory is synced into its parent; under
    the directory's lock the memory file is synced, renamed into place and
    the directory synced before the state file is renamed, the directory
    synced again, and only then is the previous memory file removed."""
    import re
    from test_api import wait_socket
    trace, sock = ctx.path("trace"), ctx.path("st.sock")
    os.mkdir(ctx.path("dur"))
    d = ctx.path("dur/s")
    p = subprocess.Popen(["strace", "-f", "--seccomp-bpf", "-y", "-qq", "-o", trace, "-e",
                          "trace=mkdir,mkdirat,fsync,renameat,renameat2,rename,unlinkat,flock",
                          ctx.tern, "run", "--kernel", ctx.guest_elf, "--memory", "64M", "--cmdline", "test=halt",
                          "--api-sock", sock], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    ctx.procs.append(p)
    try:
        wait_socket(sock, p)
        for _ in range(2):
            out = subprocess.run([ctx.tern, "snapshot", "--api-sock", sock, "--path", d], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, timeout=60)
            check(out.returncode == 0, f"snapshot: {out.stderr!r}")
        subprocess.run([ctx.tern, "shutdown", "--api-sock", sock], stdout=subprocess.DEVNULL, timeout=30)
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    with open(trace) as f:
        raw = f.read().splitlines()
    # "PID call(...) = 0"; a call another thread interrupted is split into
    # "PID call(... <unfinished ...>" and "PID <... call resumed>...) = 0"
    calls, open_calls = [], {}
    for line in raw:
        m = re.match(r"(\d+)\s+(.*)", line)
        if not m:
            continue
        pid, rest = m.groups()
        if rest.endswith("<unfinished ...>"):
            open_calls[pid] = rest[:-len("<unfinished ...>")]
            continue
        r = re.match(r"<\.\.\. \w+ resumed>(.*)", rest)
        if r:
            rest = open_calls.pop(pid, "") + r.group(1)
        if rest.endswith("= 0") or re.search(r"= 0( |$)", rest):
            calls.append(rest)
    check(calls, f"strace saw no call: {raw[:5]}")
    dur, sub = ctx.path("dur"), d

    def first(pattern, after=-1, what=""):
        for i, c in enumerate(calls):
            if i > after and re.search(pattern, c):
                return i
        raise AssertionError(f"no {what or pattern} after call {after}: {calls[after + 1:after + 12]}")

    q = re.escape
    mk = first(rf'mkdir(at)?\(.*"{q(sub)}"', what="mkdir of the new directory")
    first(rf"fsync\(\d+<{q(dur)}>\)", mk, "fsync of its parent")
    at = mk
    for n in (1, 2):
        lock = first(rf"flock\(\d+<{q(sub)}>, LOCK_EX", at, f"snapshot {n}: the directory's lock")
        mfs = first(rf"fsync\(\d+<{q(sub)}/memory\.\w+\.tmp>\)", lock, f"snapshot {n}: fsync of the memory file")
        mren = first(r'rename(at2?)?\(.*"memory\.\w+\.tmp".*"memory\.\w+"', mfs, f"snapshot {n}: its rename")
        d1 = first(rf"fsync\(\d+<{q(sub)}>\)", mren, f"snapshot {n}: fsync of the directory after the memory")
        sren = first(r'rename(at2?)?\(.*"state\.\w+\.tmp".*"state"', d1, f"snapshot {n}: the state's rename")
        d2 = first(rf"fsync\(\d+<{q(sub)}>\)", sren, f"snapshot {n}: fsync of the directory after the state")
        at = d2
    old = first(r'unlinkat\(\d+<' + q(sub) + r'>, "memory\.\w+", 0\)', at, "removal of the first memory file")
    check(old > at, "the old memory file went before the new state was durable")
