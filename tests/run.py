#!/usr/bin/env python3
"""tern's test runner: runs every suite and ends with one line
"N passed, N failed, N skipped".

Suites:
  unit   cmocka binaries in BUILD/tests/unit and BUILD/asan/tests/unit (TAP)
  kvm    tests/kvm/test_*.py against BUILD/tern and BUILD/asan/tern
  fuzz   bounded libFuzzer runs of BUILD/fuzz/*_fuzz
  linux  the nested Linux lane (tests/linux/lane.py), TAP on stdout
  tree   checks of the source tree itself: no include points up the layer
         order (scripts/check-layers.py); docs/openapi.json agrees with the
         API server's routes, fields and reply keys (scripts/check-openapi.py)

Every suite reports TAP lines ("ok - NAME", "not ok - NAME # why",
"ok - NAME # SKIP why"); a suite that crashes or prints no result counts as
a failure, never as a pass.
"""
import argparse
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "kvm"))

TAP_RE = re.compile(r"^(ok|not ok)\b(?:\s+\d+)?\s*-?\s*(.*?)(?:\s+#\s*(.*))?$")


class Results:
    def __init__(self):
        self.passed = self.failed = self.skipped = 0
        self.failures = []

    def record(self, name, ok, note=""):
        skip = ok and note.upper().startswith("SKIP")
        if skip:
            self.skipped += 1
            print(f"SKIP  {name}: {note[4:].strip()}", flush=True)
        elif ok:
            self.passed += 1
            print(f"PASS  {name}", flush=True)
        else:
            self.failed += 1
            self.failures.append(name)
            print(f"FAIL  {name}" + (f": {note}" if note else ""), flush=True)


def run_tap(res, prefix, argv, env=None, timeout=600):
    """Runs a TAP-speaking program; returns after recording its results."""
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                           timeout=timeout, text=True, errors="replace")
        out, rc = p.stdout, p.returncode
    except subprocess.TimeoutExpired as ex:
        out = ex.stdout or ""
        if isinstance(out, bytes):
            out = out.decode(errors="replace")
        rc = None
    seen = 0
    failed_here = 0
    for line in out.splitlines():
        m = TAP_RE.match(line.strip())
        if not m:
            continue
        seen += 1
        ok = m.group(1) == "ok"
        failed_here += not ok
        name = m.group(2)
        res.record(name if name.startswith(prefix + "/") else f"{prefix}/{name}", ok, m.group(3) or "")
    if rc is None:
        tail = "\n".join(out.splitlines()[-30:])
        res.record(f"{prefix}", False, f"timed out after {timeout}s; its output ended with:\n{tail}")
    elif seen == 0 or (rc != 0 and failed_here == 0):
        tail = "\n".join(out.splitlines()[-15:])
        res.record(f"{prefix}", False, f"exit status {rc}, {seen} results\n{tail}")
    elif failed_here:
        tail = "\n".join(l for l in out.splitlines() if not TAP_RE.match(l.strip()))[-3000:]
        if tail.strip():
            print(tail)


def suite_unit(res, build):
    env = dict(os.environ, CMOCKA_MESSAGE_OUTPUT="TAP")
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
    for flavour, d in (("unit", os.path.join(build, "tests/unit")),
                       ("asan-unit", os.path.join(build, "asan/tests/unit"))):
        if not os.path.isdir(d):
            res.record(flavour, False, f"{d} is missing: build the tests first")
            continue
        for name in sorted(os.listdir(d)):
            path = os.path.join(d, name)
            if name.endswith(".d") or not os.access(path, os.X_OK):
                continue
            run_tap(res, f"{flavour}/{name}", [path], env=env, timeout=300)


def load_kvm_modules():
    mods = []
    kdir = os.path.join(HERE, "kvm")
    for name in sorted(os.listdir(kdir)):
        if name.startswith("test_") and name.endswith(".py"):
            spec = importlib.util.spec_from_file_location(name[:-3], os.path.join(kdir, name))
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            mods.append(mod)
    return mods


def suite_kvm(res, build, only=None):
    import ternlib
    if not os.path.exists("/dev/kvm"):
        # Not on the CI or development machines, which have /dev/kvm.
        res.record("kvm", True, "SKIP /dev/kvm does not exist on this machine")
        return
    env = dict(os.environ, CMOCKA_MESSAGE_OUTPUT="TAP")
    guest = os.path.join(build, "firmware/testguest.elf")
    for flavour, d in (("kvm", os.path.join(build, "tests/kvm")), ("asan-kvm", os.path.join(build, "asan/tests/kvm"))):
        for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            path = os.path.join(d, name)
            if not name.endswith(".d") and os.access(path, os.X_OK) and (not only or only in name):
                run_tap(res, f"{flavour}/{name}", [path, guest], env=env, timeout=300)
    flavours = [("kvm", os.path.join(build, "tern"))]
    asan = os.path.join(build, "asan/tern")
    if os.path.exists(asan):
        flavours.append(("asan-kvm", asan))
    for mod in load_kvm_modules():
        for fname in sorted(n for n in dir(mod) if n.startswith("test_")):
            if only and only not in f"{mod.__name__}.{fname}":
                continue
            fn = getattr(mod, fname)
            for flavour, tern in flavours:
                if flavour.startswith("asan") and getattr(fn, "no_asan", False):
                    continue
                name = f"{flavour}/{mod.__name__}.{fname}"
                with tempfile.TemporaryDirectory(prefix="tern-test-") as tmp:
                    ctx = ternlib.Context(root=ROOT, build=build, tern=tern, tmp=tmp,
                                          asan=flavour.startswith("asan"))
                    try:
                        fn(ctx)
                    except ternlib.Skip as ex:
                        res.record(name, True, f"SKIP {ex}")
                        continue
                    except Exception as ex:  # noqa: BLE001 - a test failure of any kind
                        detail = "".join(traceback.format_exception_only(type(ex), ex)).strip()
                        res.record(name, False, detail)
                        continue
                    finally:
                        ctx.reap()
                    res.record(name, True)


def suite_fuzz(res, build, seconds=8):
    """A bounded smoke run of every libFuzzer target (the long campaigns are
    run by hand: see docs/testing.md); any crash, leak or sanitizer report
    fails it. Seed corpora live in tests/fuzz/corpus/NAME."""
    d = os.path.join(build, "fuzz")
    names = sorted(n for n in os.listdir(d) if n.endswith("_fuzz")) if os.path.isdir(d) else []
    if not names:
        res.record("fuzz", False, f"no fuzz targets in {d}: build them first")
    for name in names:
        with tempfile.TemporaryDirectory(prefix="tern-fuzz-") as work:
            argv = [os.path.join(d, name), f"-max_total_time={seconds}", "-rss_limit_mb=1024",
                    f"-artifact_prefix={work}/", work]
            seed = os.path.join(HERE, "fuzz", "corpus", name[:-len("_fuzz")])
            if os.path.isdir(seed):
                argv.append(seed)
            p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               errors="replace", timeout=seconds * 10 + 60)
            runs = [l for l in p.stdout.splitlines() if l.startswith("Done ")]
            res.record(f"fuzz/{name}", p.returncode == 0,
                       "" if p.returncode == 0 else "\n".join(p.stdout.splitlines()[-25:]))
            if p.returncode == 0 and runs:
                print(f"      {runs[-1]}")


def suite_linux(res, build):
    lane = os.path.join(HERE, "linux", "lane.py")
    if not os.path.exists(lane):
        res.record("linux", False, f"{lane} is missing")
        return
    # the lane kills its QEMU at its deadline and still reports; the
    # timeout here is for a lane that hangs outside QEMU
    run_tap(res, "linux", [sys.executable, lane, "--build", build, "--deadline", "1080"], timeout=1200)


def suite_tree(res):
    p = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "check-layers.py")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
    lines = p.stdout.strip().splitlines()
    res.record("tree/layers", p.returncode == 0, "; ".join(lines[-6:]) if p.returncode else "")
    p = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "check-openapi.py")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
    lines = p.stdout.strip().splitlines()
    res.record("tree/openapi", p.returncode == 0, "; ".join(lines[-6:]) if p.returncode else "")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--only", help="run only KVM tests whose name contains this")
    ap.add_argument("suites", nargs="*", default=["all"])
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    suites = a.suites
    if "all" in suites:
        suites = ["tree", "unit", "kvm", "fuzz", "linux"]
    res = Results()
    t0 = time.monotonic()
    for s in suites:
        print(f"== {s}", flush=True)
        if s == "tree":
            suite_tree(res)
        elif s == "unit":
            suite_unit(res, build)
        elif s == "kvm":
            suite_kvm(res, build, a.only)
        elif s == "fuzz":
            suite_fuzz(res, build)
        elif s == "linux":
            suite_linux(res, build)
        else:
            ap.error(f"unknown suite {s}")
    if res.failures:
        print("\nfailed:\n  " + "\n  ".join(res.failures))
    print(f"({time.monotonic() - t0:.0f}s)")
    line = f"{res.passed} passed, {res.failed} failed"
    if res.skipped:
        line += f", {res.skipped} skipped"
    print(line)
    return 1 if res.failed else 0


if __name__ == "__main__":
    sys.exit(main())
