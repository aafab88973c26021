"""Disks (virtio-blk on io_uring), as a user runs them: the guest's driver
sees the image's size and serial and gets IOERR for requests past the end
or writes to a read-only disk; the block-stamp workload rewrites every
block round after round and the host finds exactly the stamps on the
image; a second tern is refused an image that a running one holds; a
snapshot drains the disk and its restore (onto the image, or a copy of it
elsewhere) goes on with no block lost or written twice, and a restore onto
an image of another size, or without --disk, is refused."""
import os
import shutil
import struct
import time
import zlib

from ternlib import check, one_error_line, run_tern, spawn_tern
from test_api import Api, wait_socket

BLOCK = 4096
MAGIC = 0x504d5453424b4c42


def image(ctx, name, mib=8):
    path = ctx.path(name)
    with open(path, "wb") as f:
        f.truncate(mib << 20)
    return path


def stamp_of(block, index):
    """The generation block holds as a good stamp of index, else None."""
    magic, idx, gen, crc, _ = struct.unpack_from("<QQQII", block)
    want = zlib.crc32(block[32:], zlib.crc32(block[:24]))
    return gen if magic == MAGIC and idx == index and crc == want else None


def image_stamps(path, blocks):
    with open(path, "rb") as f:
        data = f.read(blocks * BLOCK)
    return [stamp_of(data[i * BLOCK:(i + 1) * BLOCK], i) for i in range(blocks)]


def rounds(reports):
    return [dict(kv.split("=") for kv in r.split()[1:]) for r in reports if r.startswith("blk-stamp round=")]


def test_disk_geometry_serial_and_refusals(ctx):
    img = image(ctx, "d.img")
    r = run_tern(ctx, ["--kernel", ctx.guest_elf, "--cmdline", "test=blk-check",
                       "--disk", f"path={img},serial=tern-test-0"])
    check(r.rc == 0, "blk-check on a read-write disk", r)
    geo = r.fields("blk")
    check(geo[0] == {"capacity": str((8 << 20) // 512), "ro": "0", "id": "0", "serial": "tern-test-0"},
          f"what the guest sees: {geo}", r)
    # past the end, over the end, a partial sector: IOERR (1); a write: OK
    check(geo[1] == {"last": "0", "past": "1", "over": "1", "partial": "1", "write": "0"}, f"answers {geo}", r)
    with open(img, "rb") as f:
        check(f.read(512) == b"\x5a" * 512, "the guest's write is not on the image")
    before = open(img, "rb").read()
    r = run_tern(ctx, ["--kernel", ctx.guest_elf, "--cmdline", "test=blk-check",
                       "--disk", f"path={img},readonly=on"])
    geo = r.fields("blk")
    check(r.rc == 0 and geo[0]["ro"] == "1" and geo[1]["write"] == "1", f"read-only disk: {geo}", r)
    check(open(img, "rb").read() == before, "a read-only disk was written")


def test_block_stamps_reach_the_image(ctx):
    img = image(ctx, "s.img")
    args = ["--kernel", ctx.guest_elf, "--cmdline", "test=blk-stamp blocks=512 rounds=3",
            "--disk", f"path={img},queues=2"]
    r = run_tern(ctx, args)
    got = rounds(r.reports)
    check(r.rc == 0 and len(got) == 3, "three rounds", r)
    check(got[0]["blank"] == "512" and all(g["good"] == "512" and g["bad"] == "0" for g in got[1:]),
          f"rounds {got}", r)
    check(image_stamps(img, 512) == [3] * 512, "the image does not hold generation 3 in every block")
    # a new guest on the same image: it finds the stamps (a good stamp is
    # accepted before its first write), then rewrites them
    r = run_tern(ctx, args[:3] + ["test=blk-stamp blocks=512 rounds=2", "--disk", f"path={img},cache=none"])
    got = rounds(r.reports)
    check(r.rc == 0 and got[0]["good"] == "512" and got[0]["gen"] == "3", f"second guest {got}", r)
    check(image_stamps(img, 512) == [5] * 512, "generation 5 everywhere after the second guest")


def test_a_held_image_is_refused(ctx):
    img = image(ctx, "l.img")
    t = spawn_tern(ctx, ["--kernel", ctx.guest_elf, "--cmdline", "test=blk-stamp blocks=64 rounds=0",
                         "--disk", f"path={img}"])
    try:
        deadline = time.monotonic() + 30
        while not rounds(t.reports()) and time.monotonic() < deadline:
            time.sleep(0.02)
        check(rounds(t.reports()), "the first tern's guest never wrote its disk")
        for spec, needle in ((f"path={img}", "is in use by"), (f"path={img},readonly=on", "is being written by")):
            t0 = time.monotonic()
            r = run_tern(ctx, ["--kernel", ctx.guest_elf, "--cmdline", "test=blk-check", "--disk", spec],
                         testdev=False)
            line = one_error_line(r)
            check(r.rc == 1 and needle in line and img in line, f"second tern on {spec}", r)
            check(time.monotonic() - t0 < 10, "the refusal waited for the lock")
        check(t.p.poll() is None, "the first tern stopped")
        check(all(g["bad"] == "0" for g in rounds(t.reports())), f"first tern's blocks {rounds(t.reports())}")
    finally:
        t.p.kill()
        t.p.wait()
    # readers share: two read-only terns at once
    t = spawn_tern(ctx, ["--kernel", ctx.guest_elf, "--cmdline", "test=halt", "--disk", f"path={img},readonly=on"])
    try:
        t.wait_report("halted")
        r = run_tern(ctx, ["--kernel", ctx.guest_elf, "--cmdline", "test=blk-check",
                           "--disk", f"path={img},readonly=on"])
        check(r.rc == 0 and r.fields("blk")[0]["ro"] == "1", "a second reader", r)
    finally:
        t.p.kill()
        t.p.wait()


def wait_rounds(t, n, timeout=60):
    deadline = time.monotonic() + timeout
    while len(rounds(t.reports())) < n and time.monotonic() < deadline and t.p.poll() is None:
        time.sleep(0.02)
    got = rounds(t.reports())
    check(len(got) >= n, f"{len(got)} rounds, wanted {n}: {t.reports()[-3:]}")
    return got


def test_snapshot_restore_loses_no_block(ctx):
    img = image(ctx, "r.img")
    sock = ctx.path("blk-api.sock")
    t = spawn_tern(ctx, ["--kernel", ctx.guest_elf, "--cmdline", "test=blk-stamp blocks=1024 rounds=0",
                         "--disk", f"path={img}", "--api-sock", sock], reports="src.txt")
    snap = ctx.path("snap")
    try:
        wait_socket(sock, t.p)
        wait_rounds(t, 2)
        api = Api.attach(ctx, sock, t)
        disks = api.client_ok("info")["disks"]
        check(len(disks) == 1 and disks[0]["path"] == img and disks[0]["size_bytes"] == 8 << 20 and
              disks[0]["queues"] == 1 and disks[0]["reads"] > 0 and disks[0]["writes"] > 0 and
              disks[0]["errors"] == 0 and not disks[0]["readonly"], f"GET /vm's disks: {disks}")
        # mid-round: requests are in flight when the snapshot pauses
        api.client_ok("snapshot", "--path", snap, "--no-resume")
    finally:
        t.p.kill()
        t.p.wait()
    before = len(rounds(t.reports()))
    # refused: no --disk, an image of another size
    r = run_tern(ctx, ["--restore", snap], testdev=False)
    check(r.rc == 1 and "give as many --disk" in one_error_line(r), "restore without --disk", r)
    small = image(ctx, "small.img", mib=4)
    r = run_tern(ctx, ["--restore", snap, "--disk", f"path={small}"], testdev=False)
    check(r.rc == 1 and "not the same disk" in one_error_line(r), "restore onto another size", r)
    # onto a copy elsewhere (the path may change), then onto the image
    moved = ctx.path("moved.img")
    shutil.copyfile(img, moved)
    for n, path in enumerate((moved, img)):
        t = spawn_tern(ctx, ["--restore", snap, "--disk", f"path={path}"], reports=f"restored{n}.txt")
        try:
            got = wait_rounds(t, 2)
            check(all(g["bad"] == "0" and g["blank"] == "0" for g in got),
                  f"restore {n}: a block lost, doubled or misplaced: {got}")
        finally:
            t.p.kill()
            t.p.wait()
    check(before >= 2, f"the source made {before} rounds")


def test_disk_option_errors(ctx):
    help_text = run_tern(ctx, ["--help"], testdev=False).stdout
    check("--disk SPEC" in help_text and "cache=none" in help_text, "--help documents --disk")
    img = image(ctx, "e.img")
    for spec, needle in (("readonly=on", "path=IMAGE is required"), (f"path={img},queues=9", "queues '9'"),
                         (f"path={img},cache=fast", "cache 'fast'"), (f"path={img},colour=red", "unknown key"),
                         (f"path={img},serial={'x' * 21}", "longer than 20"),
                         (f"path={ctx.path('none.img')}", "none.img")):
        r = run_tern(ctx, ["--kernel", ctx.guest_elf, "--disk", spec], testdev=False)
        check(r.rc == 1 and needle in one_error_line(r), f"--disk {spec}", r)


def test_migration_on_shared_storage(ctx):
    """The source keeps writing its disk while pre-copy runs; the
    destination, given the same image, takes its lock only after the
    source let go at the hand-over, and its guest goes on with every block
    as it left it. A destination given another number of disks, or an
    image of another size, refuses before the hand-over and the source
    runs on, still holding its lock."""
    from migratelib import Tern, destination, migrate
    img = image(ctx, "m.img")
    src = Tern(ctx, "src", ["--kernel", ctx.guest_elf, "--memory", "64M", "--cmdline",
                            "test=blk-stamp blocks=1024 rounds=0", "--disk", f"path={img}"])
    try:
        wait_rounds(src.t, 1)
        # refused: no --disk; an image of another size
        small = image(ctx, "m-small.img", mib=4)
        for n, extra, needle in ((0, [], "this destination was given 0 --disk"),
                                 (1, ["--disk", f"path={small}"], "not the same disk")):
            addr = f"unix:{ctx.path(f'bad{n}.mig')}"
            dst = destination(ctx, f"bad{n}", addr, extra)
            rc, _, err = migrate(src, addr)
            dst.kill()
            check(rc == 1 and needle in err, f"refused migration {n}: {err}")
            check(src.alive() and src.status()["state"] == "running", "the source stopped")
            r = run_tern(ctx, ["--kernel", ctx.guest_elf, "--cmdline", "test=blk-check", "--disk", f"path={img}"],
                         testdev=False)
            check(r.rc == 1 and "is in use by" in one_error_line(r), "the source no longer holds its lock", r)
        before = len(rounds(src.reports()))
        addr = f"unix:{ctx.path('ok.mig')}"
        dst = destination(ctx, "dst", addr, ["--disk", f"path={img}"])
        rc, out, err = migrate(src, addr)
        check(rc == 0 and out["state"] == "completed", f"migration: {err}")
        got = wait_rounds(dst.t, 2)
        check(all(g["bad"] == "0" and g["blank"] == "0" for g in got),
              f"after the migration a block was lost, doubled or misplaced: {got}")
        check(src.t.finish().rc == 0, "the source after the hand-over")
        r = run_tern(ctx, ["--kernel", ctx.guest_elf, "--cmdline", "test=blk-check", "--disk", f"path={img}"],
                     testdev=False)
        check(r.rc == 1 and "is in use by" in one_error_line(r), "the destination does not hold the lock", r)
        dst.kill()
        check(before >= 1, f"the source made {before} rounds")
    finally:
        src.kill()


def sparse_image(ctx, name, mib, stamp_blocks):
    """An image of mib MiB whose first stamp_blocks blocks the guest will
    write, with one more data extent near its end (not stamped): the copy
    must carry it and skip the hole between."""
    path = image(ctx, name, mib)
    with open(path, "r+b") as f:
        f.seek((mib << 20) - (1 << 20))
        f.write(bytes(range(256)) * 4096)
    return path


def test_migration_copying_disks(ctx):
    """--copy-disks, to a destination whose image does not exist yet: tern
    creates it, the whole image goes (holes skipped) with the blocks the
    guest writes during pre-copy, and the destination's guest finds every
    block as it left it. Refused first: an image of another size, and the
    source's own image (shared storage), with the source running on."""
    from migratelib import Tern, destination, migrate
    img = sparse_image(ctx, "c.img", 32, 1024)
    tail = open(img, "rb").read()[(31 << 20):]
    src = Tern(ctx, "src", ["--kernel", ctx.guest_elf, "--memory", "64M", "--cmdline",
                            "test=blk-stamp blocks=1024 rounds=0", "--disk", f"path={img}"])
    try:
        wait_rounds(src.t, 1)
        wrong = sparse_image(ctx, "c-wrong.img", 16, 0)
        for n, spec, needle in ((0, f"path={wrong}", "give an image of that size"),
                                (1, f"path={img}", "migrate without --copy-disks")):
            addr = f"unix:{ctx.path(f'cbad{n}.mig')}"
            dst = destination(ctx, f"cbad{n}", addr, ["--disk", spec])
            rc, _, err = migrate(src, addr, "--copy-disks")
            dst.kill()
            check(rc == 1 and needle in err, f"refused copy {n}: {err}")
            check(src.alive() and src.status()["state"] == "running", "the source stopped")
        check(os.path.getsize(wrong) == 16 << 20, "the refused destination changed its image")
        copy = ctx.path("copied.img")
        addr = f"unix:{ctx.path('copy.mig')}"
        dst = destination(ctx, "dst", addr, ["--disk", f"path={copy}"])
        # slow enough that the guest rewrites its blocks while they are copied
        rc, out, err = migrate(src, addr, "--copy-disks", "--bandwidth", "16M", "--max-passes", "4")
        check(rc == 0 and out["state"] == "completed" and out["copy_disks"], f"migration: {err}")
        check(len(out["passes"]) >= 2, f"one pass: {out}")
        check(out["disk_bytes"] == 32 << 20 and out["disk_remaining_bytes"] == 0, f"disk figures {out}")
        # the stamped 4 MiB (some of it more than once) and the tail, not the hole
        check(5 << 20 <= out["disk_sent_bytes"] < 24 << 20, f"disk bytes sent: {out['disk_sent_bytes']}")
        check("disks: sent" in err, f"the progress line shows no disk: {err}")
        got = wait_rounds(dst.t, 2)
        check(all(g["bad"] == "0" and g["blank"] == "0" for g in got),
              f"after the copy a block was lost, doubled or misplaced: {got}")
        check(src.t.finish().rc == 0, "the source after the hand-over")
        st = os.stat(copy)
        check(st.st_size == 32 << 20 and st.st_mode & 0o077 == 0, f"the created image: {st}")
        check(open(copy, "rb").read()[(31 << 20):] == tail, "the data past the stamps did not arrive")
        check(st.st_blocks * 512 < 16 << 20, f"the hole was filled: {st.st_blocks * 512} bytes allocated")
        r = run_tern(ctx, ["--kernel", ctx.guest_elf, "--cmdline", "test=blk-check", "--disk", f"path={copy}"],
                     testdev=False)
        check(r.rc == 1 and "is in use by" in one_error_line(r), "the destination does not hold the lock", r)
        dst.kill()
    finally:
        src.kill()


def test_copying_disks_cut_and_cancelled(ctx):
    """A --copy-disks migration whose connection is cut (the destination
    killed mid-copy) fails and leaves the source running on its intact
    image; one that is cancelled removes the image its destination had
    created."""
    from migratelib import Tern, destination, migrate, wait_state
    img = sparse_image(ctx, "k.img", 32, 1024)
    src = Tern(ctx, "src", ["--kernel", ctx.guest_elf, "--memory", "64M", "--cmdline",
                            "test=blk-stamp blocks=1024 rounds=0", "--disk", f"path={img}"])
    try:
        wait_rounds(src.t, 1)
        for n, how in enumerate(("cut", "cancel")):
            target = ctx.path(f"k-{how}.img")
            addr = f"unix:{ctx.path(f'k{n}.mig')}"
            dst = destination(ctx, f"k{how}", addr, ["--disk", f"path={target}"])
            rc, _, err = migrate(src, addr, "--copy-disks", "--bandwidth", "2M", "--no-wait")
            check(rc == 0, f"migrate --no-wait: {err}")
            wait_state(src, ("active",))
            deadline = time.monotonic() + 20
            while src.migration().get("disk_sent_bytes", 0) < (1 << 20) and time.monotonic() < deadline:
                time.sleep(0.05)
            check(os.path.exists(target), "the destination did not create its image")
            if how == "cut":
                dst.t.p.kill()
            else:
                src.api.client_ok("migrate-cancel")
            st = wait_state(src, ("failed", "cancelled"))
            check(st == ("failed" if how == "cut" else "cancelled"), f"{how}: the migration ended {st}")
            r = dst.t.finish(timeout=30)
            check(how == "cut" or r.rc == 1, f"the cancelled destination: {r.rc}", r)
            if how == "cancel":
                check(not os.path.exists(target), "the cancelled destination left its image")
            check(src.alive() and src.status()["state"] == "running", f"{how}: the source stopped")
            done = len(rounds(src.reports()))
            got = wait_rounds(src.t, done + 2)
            check(all(g["bad"] == "0" and g["blank"] == "0" for g in got[1:]), f"{how}: the source's blocks {got}")
        r = run_tern(ctx, ["--kernel", ctx.guest_elf, "--cmdline", "test=blk-check", "--disk", f"path={img}"],
                     testdev=False)
        check(r.rc == 1 and "is in use by" in one_error_line(r), "the source let go of its lock", r)
    finally:
        src.kill()
