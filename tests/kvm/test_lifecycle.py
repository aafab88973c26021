"""How a run ends: the guest's exit status, faults, reset, signals, the
console (input, output, Ctrl-A x)."""
import os
import signal
import subprocess
import time

from ternlib import check, run_tern, spawn_tern


def guest(ctx, test, *extra, cmdline_extra="", **kw):
    return run_tern(ctx, ["--kernel", ctx.guest_elf, "--memory", "64M",
                          "--cmdline", f"test={test} {cmdline_extra}".strip()] + list(extra), **kw)


def test_exit_status_passes_through(ctx):
    for status in (0, 1, 42, 255):
        r = guest(ctx, "exit", cmdline_extra=f"exit={status}")
        check(r.rc == status, f"guest asked for {status}, tern exited {r.rc}", r)
        check(r.stderr.strip() == "", "tern printed something on a clean guest exit", r)


def test_guest_fault_is_reported(ctx):
    r = guest(ctx, "fault")
    check(r.rc == 2, "a faulting guest should exit with its fault status 2", r)
    check(r.fields("fault")[0]["vector"] == "6", "fault vector should be #UD (6)", r)


def test_i8042_reset_exits_zero(ctx):
    r = guest(ctx, "reset")
    check(r.rc == 0, "reset through the i8042 should end tern with status 0", r)
    check(not [x for x in r.reports if x.startswith("error")], "guest saw the reset ignored", r)


def test_unknown_test_name(ctx):
    r = guest(ctx, "no-such-test")
    check(r.rc == 3, "usage error status 3 expected", r)


def test_serial_output_on_stdout(ctx):
    r = guest(ctx, "boot-info")
    check(r.rc == 0, "boot-info failed", r)
    check("report: up abi=1" in r.stdout, "guest's UART output missing from stdout", r)
    check("report: exit status=0" in r.stdout, "UART output incomplete", r)


def interactive(ctx, test):
    t = spawn_tern(ctx, ["--kernel", ctx.guest_elf, "--memory", "64M", "--cmdline", f"test={test}"])
    t.wait_report("echo ready" if test == "echo" else "halted")
    return t


def test_console_input_reaches_guest(ctx):
    t = interactive(ctx, "echo")
    t.send(b"hello tern\nsecond line\n")
    t.wait_report("echo line=second line")
    t.send(b"quit\n")
    r = t.finish()
    check(r.rc == 0, "echo test failed", r)
    lines = [x for x in r.reports if x.startswith("echo line=")]
    check(lines == ["echo line=hello tern", "echo line=second line", "echo line=quit"],
          f"guest received {lines}", r)


def test_ctrl_a_x_quits(ctx):
    t = interactive(ctx, "halt")
    t.send(b"\x01x")
    r = t.finish()
    check(r.rc == 0, "Ctrl-A x should stop tern with status 0", r)
    check(r.stderr.strip() == "", "Ctrl-A x is not an error", r)


def test_ctrl_a_ctrl_a_sends_one(ctx):
    t = interactive(ctx, "echo")
    t.send(b"a\x01\x01b\x01zc\nquit\n")
    r = t.finish()
    check(r.rc == 0, "echo test failed", r)
    check("echo line=a?bc" in r.reports, f"expected exactly one Ctrl-A, Ctrl-A z dropped: {r.reports}", r)


def test_sigterm_stops_cleanly(ctx):
    reports = ctx.path("r.txt")
    p = subprocess.Popen([ctx.tern, "run", "--kernel", ctx.guest_elf, "--memory", "64M", "--cpus", "2",
                          "--cmdline", "test=halt", f"--test-device={reports}"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if os.path.exists(reports) and "halted" in open(reports).read():
                break
            time.sleep(0.02)
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
    check(p.returncode == 1, f"SIGTERM: exit status {p.returncode}, expected 1; stderr {err!r}")
    check(err.decode().strip() == "tern: error: stopped by signal 15 (Terminated)",
          f"unexpected stderr {err!r}")
