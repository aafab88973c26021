"""tern boots the test guest through each loader and the guest reports what
it was given: protocol, command line, memory map, initrd, CPUs."""
import os

from ternlib import GIB, MIB, check, crc32_file, expected_ram, num, run_tern


def make_initrd(ctx, size=3 * MIB + 123):
    path = ctx.path("initrd.bin")
    with open(path, "wb") as f:
        f.write(os.urandom(size))
    return path


def boot_info(ctx, kernel, cpus=4, mem="1G", extra=(), cmdline="test=boot-info x=y", initrd=True):
    args = ["--kernel", kernel, "--cpus", str(cpus), "--memory", mem, "--cmdline", cmdline]
    path = make_initrd(ctx) if initrd else None
    if path:
        args += ["--initrd", path]
    r = run_tern(ctx, args + list(extra))
    check(r.rc == 0, "tern did not exit 0", r)
    check(r.report("exit") == "status=0", "guest did not finish", r)
    return r, path


def check_boot_info(r, initrd, cpus, mem, proto, cmdline="test=boot-info x=y"):
    check(r.report("proto") == proto, f"protocol {r.report('proto')} != {proto}", r)
    check(r.report("cmdline") == cmdline, "command line differs", r)
    check(num(r.report("cpus")) == cpus, f"guest saw {r.report('cpus')} CPUs, expected {cpus}", r)
    check(num(r.report("mem_total")) == expected_ram(mem), "RAM in the memory map differs", r)
    if initrd:
        f = r.fields("initrd")[0]
        check(num(f["len"]) == os.path.getsize(initrd), "initrd length differs", r)
        check(num(f["crc32"]) == crc32_file(initrd), "initrd checksum differs", r)


def test_elf_pvh_4cpus_1g(ctx):
    r, initrd = boot_info(ctx, ctx.guest_elf)
    check_boot_info(r, initrd, 4, GIB, "pvh")


def test_bzimage_4cpus_1g(ctx):
    r, initrd = boot_info(ctx, ctx.guest_bz)
    check_boot_info(r, initrd, 4, GIB, "linux64")


def test_elf_linux64_entry(ctx):
    r, initrd = boot_info(ctx, ctx.guest_elf, extra=["--boot-protocol", "linux"])
    check_boot_info(r, initrd, 4, GIB, "linux64")


def test_cpu_counts(ctx):
    for cpus in (1, 2, 4):
        for kernel in (ctx.guest_elf, ctx.guest_bz):
            r, _ = boot_info(ctx, kernel, cpus=cpus, mem="128M", initrd=False)
            check(num(r.report("cpus")) == cpus, f"{cpus} vCPUs given, guest saw {r.report('cpus')}", r)


def test_many_cpus(ctx):
    r, _ = boot_info(ctx, ctx.guest_elf, cpus=16, mem="64M", initrd=False)
    check(num(r.report("cpus")) == 16, "not all 16 CPUs came up", r)


def test_memory_map_layout(ctx):
    """Below 3 GiB RAM is one block from 1 MiB; above, the rest starts at 4 GiB."""
    for mem, size in (("64M", 64 * MIB), ("3G", 3 * GIB), ("5G", 5 * GIB)):
        r, _ = boot_info(ctx, ctx.guest_bz, cpus=1, mem=mem, initrd=False)
        ram = [(num(e["addr"]), num(e["len"])) for e in r.fields("memmap") if e["type"] == "1"]
        low = min(size, 3 * GIB)
        want = [(0, 0x9f000), (0x100000, low - 0x100000)]
        if size > 3 * GIB:
            want.append((4 * GIB, size - 3 * GIB))
        check(ram == want, f"--memory {mem}: RAM map {ram} != {want}", r)
        check(num(r.report("mem_total")) == expected_ram(size), "total RAM differs", r)


def test_initrd_on_every_loader(ctx):
    for kernel, extra in ((ctx.guest_elf, []), (ctx.guest_bz, []), (ctx.guest_elf, ["--boot-protocol", "linux"])):
        r, initrd = boot_info(ctx, kernel, cpus=1, mem="256M", extra=extra)
        f = r.fields("initrd")[0]
        check(num(f["crc32"]) == crc32_file(initrd), "initrd checksum differs", r)


def test_no_initrd(ctx):
    r, _ = boot_info(ctx, ctx.guest_elf, cpus=1, mem="64M", initrd=False)
    check(r.fields("initrd") == [{"len": "0"}] or r.report("initrd") == "len=0", "guest saw an initrd", r)
