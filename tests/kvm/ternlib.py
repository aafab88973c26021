"""Helpers for tern's KVM tests: run build/tern as a user would and read
what the test guest reported through the test device."""
import os
import re
import subprocess
import zlib


class Skip(Exception):
    """Raised by a test whose prerequisite is missing (never on CI)."""


class TestFailure(AssertionError):
    pass


class Context:
    def __init__(self, root, build, tern, tmp, asan=False):
        self.root = root
        self.build = build
        self.tern = tern
        self.tmp = tmp
        self.asan = asan
        self.guest_elf = os.path.join(build, "firmware/testguest.elf")
        self.guest_bz = os.path.join(build, "firmware/testguest.bzImage")
        self.procs = []  # every tern a test spawned: reaped after it

    def reap(self):
        """Kills what a test left running (a failed test leaves terns whose
        guests would burn CPU for the rest of the suite)."""
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()

    def path(self, name):
        return os.path.join(self.tmp, name)


class Run:
    def __init__(self, argv, rc, stdout, stderr, reports):
        self.argv, self.rc, self.stdout, self.stderr, self.reports = argv, rc, stdout, stderr, reports

    def report(self, key):
        """Value of the first 'key=...' report, or of a report starting with 'key '."""
        for r in self.reports:
            if r.startswith(key + "="):
                return r[len(key) + 1:]
        for r in self.reports:
            if r.startswith(key + " "):
                return r[len(key) + 1:]
        raise TestFailure(f"guest made no '{key}' report; reports: {self.reports}\nstderr: {self.stderr}")

    def fields(self, key):
        """Parses 'key a=1 b=2' reports into a list of dicts."""
        out = []
        for r in self.reports:
            if r.startswith(key + " "):
                out.append(dict(kv.split("=", 1) for kv in r[len(key) + 1:].split() if "=" in kv))
        return out

    def __str__(self):
        return (f"{' '.join(self.argv)}\n  rc={self.rc}\n  stdout={self.stdout[-2000:]!r}\n"
                f"  stderr={self.stderr[-2000:]!r}")


def strict_sim(args):
    """The software device in the tests is as strict as hardware
    (strict=on: it serves a queue it found empty only after a kick and
    forgets kicks sent while it is suspended or reset), so that a lost kick
    fails a test instead of hiding. A test that says strict= keeps its own."""
    out = list(args)
    for i in range(1, len(out)):
        if out[i - 1] == "--net" and out[i].startswith("vdpa-sim") and "strict=" not in out[i]:
            out[i] += ",strict=on"
    return out


def run_tern(ctx, args, timeout=60, stdin_data=None, testdev=True):
    """Runs `tern run ARGS`; returns a Run with the test-device reports."""
    argv = [ctx.tern, "run"] + strict_sim(args)
    report_file = None
    if testdev:
        report_file = ctx.path("reports.txt")
        if os.path.exists(report_file):
            os.unlink(report_file)
        argv.append(f"--test-device={report_file}")
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
    p = subprocess.run(argv, input=stdin_data if stdin_data is not None else b"",
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, env=env)
    reports = []
    if report_file and os.path.exists(report_file):
        with open(report_file, errors="replace") as f:
            reports = [l[len("testdev: "):].rstrip("\n") for l in f if l.startswith("testdev: ")]
    return Run(argv, p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"), reports)


def check(cond, msg, run=None):
    if not cond:
        raise TestFailure(msg + (f"\n{run}" if run is not None else ""))


def crc32_file(path):
    with open(path, "rb") as f:
        return zlib.crc32(f.read()) & 0xffffffff


def one_error_line(run):
    """tern's stderr on failure: exactly one line 'tern: error: ...' (after
    the line of a destination waiting for its migration, if any)."""
    lines = [l for l in run.stderr.splitlines() if l.strip() and not l.startswith("tern: waiting for a migration")]
    check(len(lines) == 1 and lines[0].startswith("tern: error: "),
          f"expected one 'tern: error:' line, got {lines!r}", run)
    return lines[0][len("tern: error: "):]


def kvm_available():
    return os.path.exists("/dev/kvm")


MIB = 1 << 20
GIB = 1 << 30
EBDA = 0x9f000  # firmware/abi.h BOOT_EBDA_GPA: RAM below 1 MiB ends here


def expected_ram(mem):
    """RAM bytes tern's e820 reports for a guest of mem bytes."""
    return mem - (0x100000 - EBDA)


_num = re.compile(r"^(0x[0-9a-f]+|\d+)$")


def num(s):
    check(_num.match(s) is not None, f"not a number: {s!r}")
    return int(s, 0)


class Spawned:
    """A tern process the test talks to while it runs. With console=PATH its
    stdout (the guest's console) goes to that file instead of a pipe, for
    runs long enough to fill a pipe nobody reads."""

    def __init__(self, ctx, args, reports="spawn-reports.txt", console=None, prefix=()):
        self.reports_path = ctx.path(reports)
        self.argv = list(prefix) + [ctx.tern, "run"] + strict_sim(args) + [f"--test-device={self.reports_path}"]
        self.console = open(console, "wb") if console else None
        self.p = subprocess.Popen(self.argv, stdin=subprocess.PIPE,
                                  stdout=self.console if self.console else subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        ctx.procs.append(self.p)

    def reports(self):
        if not os.path.exists(self.reports_path):
            return []
        with open(self.reports_path, errors="replace") as f:
            return [l[len("testdev: "):].rstrip("\n") for l in f if l.startswith("testdev: ")]

    def wait_report(self, text, timeout=20):
        import time
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.reports():
                return
            if self.p.poll() is not None:
                break
            time.sleep(0.01)
        raise TestFailure(f"guest never reported {text!r}; reports {self.reports()}")

    def send(self, data):
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def finish(self, timeout=30):
        """Closes stdin, waits; returns a Run."""
        try:
            out, err = self.p.communicate(timeout=timeout)
            if self.console:
                self.console.close()
                out = b""
        finally:
            if self.p.poll() is None:
                self.p.kill()
                self.p.wait()
        return Run(self.argv, self.p.returncode, out.decode(errors="replace"), err.decode(errors="replace"),
                   self.reports())


def spawn_tern(ctx, args, reports="spawn-reports.txt", console=None, prefix=()):
    """tern run ARGS in the background; prefix: a command that runs it
    (setpriv, to start it as another user)."""
    return Spawned(ctx, args, reports, console, prefix)
