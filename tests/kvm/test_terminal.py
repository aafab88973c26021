"""With a terminal as stdin, tern switches it to raw mode for the run and
restores it afterwards; Ctrl-A x still quits."""
import os
import pty
import subprocess
import termios
import time

from ternlib import check


def test_raw_mode_and_restore(ctx):
    master, slave = pty.openpty()
    before = termios.tcgetattr(slave)
    check(before[3] & termios.ICANON, "a new pty should start in canonical mode")
    reports = ctx.path("r.txt")
    p = subprocess.Popen([ctx.tern, "run", "--kernel", ctx.guest_elf, "--memory", "64M", "--cmdline",
                          "test=echo", f"--test-device={reports}"],
                         stdin=slave, stdout=slave, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if os.path.exists(reports) and "echo ready" in open(reports).read():
                break
            time.sleep(0.01)
        during = termios.tcgetattr(slave)
        check(not (during[3] & (termios.ICANON | termios.ECHO | termios.ISIG)),
              "terminal not in raw mode while the guest runs")
        # Raw mode: a line typed with ^C in it reaches the guest intact.
        os.write(master, b"ab\x03cd\r")
        while time.monotonic() < deadline and "echo line=ab?cd" not in open(reports).read():
            time.sleep(0.01)
        check("echo line=ab?cd" in open(reports).read(), "Ctrl-C did not reach the guest as a byte")
        os.write(master, b"\x01x")
        p.wait(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    err = p.stderr.read().decode()
    check(p.returncode == 0, f"Ctrl-A x on a terminal: status {p.returncode}, stderr {err!r}")
    after = termios.tcgetattr(slave)
    check(after == before, "terminal settings not restored after tern exited")
    os.close(master)
    os.close(slave)
