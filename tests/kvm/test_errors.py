"""Every user mistake gets a non-zero exit and exactly one line naming it."""
import subprocess

from ternlib import check, one_error_line, run_tern


def fails(ctx, args, *needles):
    r = run_tern(ctx, args, testdev=False, timeout=30)
    check(r.rc != 0, "tern should have failed", r)
    msg = one_error_line(r)
    for n in needles:
        check(n in msg, f"error line {msg!r} should mention {n!r}", r)
    return msg


def write(ctx, name, data):
    p = ctx.path(name)
    with open(p, "wb") as f:
        f.write(data)
    return p


def test_not_a_kernel(ctx):
    fails(ctx, ["--kernel", "/etc/passwd"], "/etc/passwd", "unrecognised kernel image format")


def test_missing_kernel_file(ctx):
    fails(ctx, ["--kernel", ctx.path("nope")], "cannot open kernel", "No such file")


def test_kernel_is_a_directory(ctx):
    fails(ctx, ["--kernel", ctx.tmp], "not a regular file")


def test_empty_kernel(ctx):
    fails(ctx, ["--kernel", write(ctx, "empty", b"")], "empty")


def test_missing_initrd(ctx):
    fails(ctx, ["--kernel", ctx.guest_elf, "--initrd", ctx.path("nope")], "cannot open initrd")


def test_kvm_device_missing(ctx):
    fails(ctx, ["--kernel", ctx.guest_elf, "--kvm-device", ctx.path("kvm")], "KVM is not available",
          "does not exist")


def test_kvm_device_not_kvm(ctx):
    fails(ctx, ["--kernel", ctx.guest_elf, "--kvm-device", "/dev/null"], "is not a KVM device")


def test_memory_too_large(ctx):
    fails(ctx, ["--kernel", ctx.guest_elf, "--memory", "8000T"], "too large", "physical address space")


def test_memory_too_small(ctx):
    fails(ctx, ["--kernel", ctx.guest_elf, "--memory", "1M"], "too small")


def test_bad_flag_values(ctx):
    fails(ctx, ["--kernel", ctx.guest_elf, "--cpus", "0"], "--cpus")
    fails(ctx, ["--kernel", ctx.guest_elf, "--cpus", "65"], "--cpus")
    fails(ctx, ["--kernel", ctx.guest_elf, "--cpus", "two"], "--cpus")
    fails(ctx, ["--kernel", ctx.guest_elf, "--memory", "lots"], "--memory")
    fails(ctx, ["--kernel", ctx.guest_elf, "--memory", "12Q"], "--memory")
    fails(ctx, ["--kernel", ctx.guest_elf, "--boot-protocol", "efi"], "--boot-protocol")
    fails(ctx, ["--kernel", ctx.guest_elf, "--frobnicate"], "unknown option")
    fails(ctx, ["--kernel"], "needs a value")
    fails(ctx, ["--cpus", "2"], "--kernel is required")
    fails(ctx, ["--kernel", ctx.guest_elf, "stray"], "unexpected argument")


def test_truncated_images(ctx):
    elf = open(ctx.guest_elf, "rb").read()
    bz = open(ctx.guest_bz, "rb").read()
    fails(ctx, ["--kernel", write(ctx, "e1", elf[:40])], "truncated")
    fails(ctx, ["--kernel", write(ctx, "e2", elf[:200])], "outside the file")
    fails(ctx, ["--kernel", write(ctx, "e3", elf[:0x1800])], "outside the file")
    fails(ctx, ["--kernel", write(ctx, "b1", bz[:0x300])], "truncated")
    fails(ctx, ["--kernel", write(ctx, "b2", bz[:1024])], "truncated")


def test_corrupt_elf_fields(ctx):
    elf = bytearray(open(ctx.guest_elf, "rb").read())
    bad = bytearray(elf)
    bad[18] = 0x3e + 1  # e_machine
    fails(ctx, ["--kernel", write(ctx, "m", bad)], "not x86-64")
    bad = bytearray(elf)
    bad[32:40] = (0xffffffffffffff00).to_bytes(8, "little")  # e_phoff
    fails(ctx, ["--kernel", write(ctx, "p", bad)], "outside the file")
    bad = bytearray(elf)
    bad[56:58] = (1000).to_bytes(2, "little")  # e_phnum
    fails(ctx, ["--kernel", write(ctx, "n", bad)], "program header table")


def test_corrupt_bzimage_fields(ctx):
    bz = bytearray(open(ctx.guest_bz, "rb").read())
    bad = bytearray(bz)
    bad[0x236] = 0  # xloadflags: no 64-bit entry
    fails(ctx, ["--kernel", write(ctx, "x", bad)], "64-bit entry")
    bad = bytearray(bz)
    bad[0x206:0x208] = (0x0200).to_bytes(2, "little")  # protocol 2.00
    fails(ctx, ["--kernel", write(ctx, "v", bad)], "too old")
    bad = bytearray(bz)
    bad[0x260:0x264] = (0xfff00000).to_bytes(4, "little")  # init_size ~4 GiB
    fails(ctx, ["--kernel", write(ctx, "i", bad), "--memory", "64M"], "more memory")


def test_initrd_does_not_fit(ctx):
    big = write(ctx, "big", b"\0" * (20 << 20))
    fails(ctx, ["--kernel", ctx.guest_elf, "--memory", "16M", "--initrd", big], "does not fit")


def test_cmdline_too_long(ctx):
    fails(ctx, ["--kernel", ctx.guest_elf, "--cmdline", "x" * 70000], "command line is too long")


def test_pvh_needs_elf(ctx):
    fails(ctx, ["--kernel", ctx.guest_bz, "--boot-protocol", "pvh"], "PVH boot needs an ELF")


def test_help_and_version(ctx):
    out = subprocess.run([ctx.tern, "--help"], capture_output=True, text=True)
    check(out.returncode == 0 and "run" in out.stdout, f"tern --help: {out}")
    out = subprocess.run([ctx.tern, "run", "--help"], capture_output=True, text=True)
    check(out.returncode == 0, f"tern run --help: {out}")
    for flag in ("--kernel", "--initrd", "--cmdline", "--cpus", "--memory", "--test-device",
                 "--boot-protocol", "--kvm-device", "Ctrl-A x"):
        check(flag in out.stdout, f"tern run --help does not document {flag}")
    out = subprocess.run([ctx.tern, "--version"], capture_output=True, text=True)
    check(out.returncode == 0 and out.stdout.startswith("tern "), f"tern --version: {out}")
    out = subprocess.run([ctx.tern, "frob"], capture_output=True, text=True)
    check(out.returncode != 0 and "unknown command" in out.stderr, f"tern frob: {out}")


def test_restore_errors(ctx):
    fails(ctx, ["--restore", ctx.path("nope")], "cannot open snapshot state")
    fails(ctx, ["--restore", ctx.tmp, "--kernel", ctx.guest_elf], "--restore takes the machine from the snapshot")
    fails(ctx, ["--restore", ctx.tmp, "--cpus", "2"], "--restore takes the machine from the snapshot")
    write(ctx, "state", b"NOTASNAPSHOT" * 4)
    fails(ctx, ["--restore", ctx.tmp], "not a tern snapshot")
    write(ctx, "state", b"")
    fails(ctx, ["--restore", ctx.tmp], "too short")
