"""The control API (docs/api.md): `tern run --api-sock PATH` with the test
guest, driven with curl --unix-socket and with tern's own client commands."""
import json
import os
import signal
import socket
import subprocess
import time

from ternlib import TestFailure, check, one_error_line, run_tern, spawn_tern


def sock_path(ctx):
    return ctx.path("api.sock")


def wait_socket(path, proc, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.01)
    raise TestFailure(f"tern never created {path} (rc={proc.poll()})")


class Api:
    """A tern run serving the API, and ways to talk to it."""

    def __init__(self, ctx, test="halt", cpus=1, memory="64M", ready=None, extra=()):
        self.ctx = ctx
        self.sock = sock_path(ctx)
        self.t = spawn_tern(ctx, ["--kernel", ctx.guest_elf, "--memory", memory, "--cpus", str(cpus),
                                  "--cmdline", f"test={test}", "--api-sock", self.sock] + list(extra))
        wait_socket(self.sock, self.t.p)
        self.t.wait_report(ready or ("echo ready" if test == "echo" else "halted"))

    @classmethod
    def attach(cls, ctx, sock, t):
        """An Api for a tern already started (e.g. by --restore) on sock."""
        api = cls.__new__(cls)
        api.ctx, api.sock, api.t = ctx, sock, t
        return api

    def curl(self, method, path, data=None, headers=()):
        """(status, parsed JSON or None, raw headers) of one request with curl."""
        hdr = self.ctx.path("curl-headers")
        argv = ["curl", "-sS", "--unix-socket", self.sock, "-X", method, "-D", hdr,
                f"http://localhost{path}"]
        for h in headers:
            argv += ["-H", h]
        if data is not None:
            argv += ["--data-binary", "@-"]
        p = subprocess.run(argv, input=data.encode() if isinstance(data, str) else (data or b""),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        check(p.returncode == 0, f"curl failed: {p.stderr!r}")
        with open(hdr) as f:
            head = f.read()
        status = int(head.split()[1])
        body = json.loads(p.stdout) if p.stdout.strip() else None
        return status, body, head

    def client(self, cmd, *args):
        return subprocess.run([self.ctx.tern, cmd, "--api-sock", self.sock] + list(args),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)

    def client_ok(self, cmd, *args):
        p = self.client(cmd, *args)
        check(p.returncode == 0 and p.stderr == "", f"tern {cmd}: rc={p.returncode} stderr={p.stderr!r}")
        return json.loads(p.stdout)

    def shutdown(self):
        """Shuts tern down through the API; returns its Run."""
        out = self.client_ok("shutdown")
        check(out == {"state": "stopping"}, f"shutdown answered {out}")
        return self.t.finish()

    def kill(self):
        if self.t.p.poll() is None:
            self.t.p.kill()
            self.t.p.wait()


def expect_error(api, method, path, data, status, needle, headers=()):
    got, body, head = api.curl(method, path, data, headers)
    check(got == status, f"{method} {path} {data!r}: HTTP {got}, expected {status}; {body}")
    check(isinstance(body, dict) and list(body) == ["error"] and needle in body["error"],
          f"{method} {path}: error {body!r} should mention {needle!r}")
    check("Content-Type: application/json" in head, f"no JSON content type in {head!r}")
    return head


def test_info_shows_configuration(ctx):
    api = Api(ctx, cpus=2, memory="96M")
    try:
        st, info, _ = api.curl("GET", "/vm")
        check(st == 200, f"GET /vm: {st}")
        check(info["vcpus"] == 2, f"vcpus {info}")
        check(info["memory_bytes"] == 96 << 20 and info["memory_mib"] == 96, f"memory {info}")
        check(info["kernel"] == ctx.guest_elf and info["cmdline"] == "test=halt" and info["initrd"] is None,
              f"boot config {info}")
        check(info["state"] == "running", f"state {info}")
        version = subprocess.run([ctx.tern, "--version"], stdout=subprocess.PIPE, text=True).stdout.split()[1]
        check(info["version"] == version, f"version {info['version']} vs {version}")
        check(isinstance(info["uptime_ms"], int) and 0 <= info["uptime_ms"] < 120000, f"uptime {info}")
        time.sleep(0.2)
        later = api.client_ok("info")
        check(later["uptime_ms"] >= info["uptime_ms"] + 150, f"uptime does not advance: {info} {later}")
        check({k: v for k, v in later.items() if k != "uptime_ms"} ==
              {k: v for k, v in info.items() if k != "uptime_ms"}, "client and curl disagree")
        p = api.client("info")
        check(p.stdout.startswith("{\n  \"version\": "), f"client output is not pretty JSON: {p.stdout!r}")
        r = api.shutdown()
        check(r.rc == 0, "shutdown through the API should end tern with 0", r)
        check(r.stderr.strip() == "", "a shutdown is not an error", r)
        check(not os.path.exists(api.sock), "the socket file outlived tern")
    finally:
        api.kill()


def test_pause_resume_status(ctx):
    api = Api(ctx, cpus=2)
    try:
        st, body, _ = api.curl("PUT", "/vm/pause")
        check((st, body) == (200, {"state": "paused"}), f"pause: {st} {body}")
        check(api.client_ok("status") == {"state": "paused", "migration": {"state": "none"}}, "status paused")
        check(api.client_ok("info")["state"] == "paused", "info while paused")
        # idempotent
        check(api.client_ok("pause") == {"state": "paused"}, "second pause")
        st, body, _ = api.curl("PUT", "/vm/pause", "{}", ["Content-Type: application/json"])
        check((st, body) == (200, {"state": "paused"}), f"pause with {{}}: {st} {body}")
        check(api.client_ok("resume") == {"state": "running"}, "resume")
        st, body, _ = api.curl("GET", "/vm/status")
        check((st, body) == (200, {"state": "running", "migration": {"state": "none"}}), f"status: {body}")
        check(api.client_ok("resume") == {"state": "running"}, "second resume")
        # shutting down a paused VM works too
        check(api.client_ok("pause") == {"state": "paused"}, "pause again")
        st, body, _ = api.curl("PUT", "/vm/shutdown")
        check((st, body) == (200, {"state": "stopping"}), f"shutdown: {st} {body}")
        r = api.t.finish()
        check(r.rc == 0, "shutdown of a paused VM should end tern with 0", r)
        check(not os.path.exists(api.sock), "the socket file outlived tern")
    finally:
        api.kill()


def test_pause_really_stops_the_guest(ctx):
    api = Api(ctx, test="echo")
    try:
        api.t.send(b"before\n")
        api.t.wait_report("echo line=before")
        api.client_ok("pause")
        api.t.send(b"while paused\n")
        time.sleep(1.0)
        check("echo line=while paused" not in api.t.reports(),
              f"a paused guest echoed console input: {api.t.reports()}")
        api.client_ok("resume")
        api.t.wait_report("echo line=while paused")
        api.t.send(b"quit\n")
        r = api.t.finish()
        check(r.rc == 0, "echo test failed", r)
        lines = [x for x in r.reports if x.startswith("echo line=")]
        check(lines == ["echo line=before", "echo line=while paused", "echo line=quit"], f"echoed {lines}", r)
        check(not os.path.exists(api.sock), "the socket file outlived tern")
    finally:
        api.kill()


def test_bad_requests(ctx):
    api = Api(ctx)
    try:
        expect_error(api, "GET", "/nothing", None, 404, "no such resource '/nothing'")
        expect_error(api, "GET", "/vm/", None, 404, "no such resource")
        head = expect_error(api, "POST", "/vm", "", 405, "does not allow POST")
        check("Allow: GET, HEAD" in head, f"405 without Allow: {head!r}")
        head = expect_error(api, "GET", "/vm/pause", None, 405, "does not allow GET")
        check("Allow: PUT" in head, f"405 without Allow: {head!r}")
        expect_error(api, "DELETE", "/vm/snapshot", None, 405, "allowed: PUT")
        expect_error(api, "PUT", "/vm/snapshot", '{"path": ', 400, "malformed JSON")
        expect_error(api, "PUT", "/vm/snapshot", '{"path": "/x"} trailing', 400, "malformed JSON")
        expect_error(api, "PUT", "/vm/snapshot", '["/x"]', 400, "must be a JSON object")
        expect_error(api, "PUT", "/vm/snapshot", '{"path": 42}', 400, "field 'path' must be a string")
        expect_error(api, "PUT", "/vm/snapshot", '{"path": "/x", "resume": "yes"}', 400,
                     "field 'resume' must be true or false")
        expect_error(api, "PUT", "/vm/snapshot", '{"path": "/x", "colour": "red"}', 400, "unknown field 'colour'")
        expect_error(api, "PUT", "/vm/snapshot", '{}', 400, "field 'path' is required")
        expect_error(api, "PUT", "/vm/pause", '{"force": true}', 400, "unknown field 'force'")
        expect_error(api, "GET", "/vm", "{}", 400, "takes no body")
        expect_error(api, "PUT", "/vm/snapshot", '{"path": "' + "a" * 70000 + '"}', 413, "larger than 65536")
        expect_error(api, "PUT", "/vm/snapshot", "x" * 70000, 413, "larger than 65536",
                     ["Expect: 100-continue"])
        expect_error(api, "PUT", "/vm/snapshot", "x" * 70000, 413, "larger than 65536",
                     ["Transfer-Encoding: chunked"])
        # none of that changed anything, and the API still answers
        st, body, _ = api.curl("GET", "/vm/status")
        check((st, body["state"]) == (200, "running"), f"status after bad requests: {st} {body}")
        r = api.shutdown()
        check(r.rc == 0 and r.stderr.strip() == "", "tern should exit 0 after bad requests", r)
    finally:
        api.kill()


def test_snapshot_endpoint(ctx):
    """PUT /vm/snapshot writes a snapshot and keeps the VM running; with
    resume=false it stays paused; a bad path is a JSON error, VM unaffected."""
    api = Api(ctx)
    try:
        snap = ctx.path("snap")
        st, body, _ = api.curl("PUT", "/vm/snapshot", json.dumps({"path": snap, "resume": True}))
        check(st == 200 and body["path"] == snap and body["state"] == "running" and body["type"] == "full"
              and body["pages"] > 0, f"snapshot: {st} {body}")
        check(os.path.exists(os.path.join(snap, "state")), "no state file written")
        check(api.client_ok("status")["state"] == "running", "the VM should still run")
        out = api.client_ok("snapshot", "--path", snap, "--no-resume")
        check(out["state"] == "paused", f"--no-resume: {out}")
        check(api.client_ok("status")["state"] == "paused", "the VM should stay paused")
        api.client_ok("resume")
        st, body, _ = api.curl("PUT", "/vm/snapshot", json.dumps({"path": "/proc/no/such/dir"}))
        check(st >= 400 and "error" in body, f"bad path: {st} {body}")
        check(api.client_ok("status")["state"] == "running", "a failed snapshot must leave the VM running")
        r = api.shutdown()
        check(r.rc == 0, "shutdown failed", r)
    finally:
        api.kill()


def test_client_errors(ctx):
    missing = ctx.path("no-such.sock")
    p = subprocess.run([ctx.tern, "info", "--api-sock", missing], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=30)
    check(p.returncode == 1 and p.stdout == "", f"rc={p.returncode} stdout={p.stdout!r}")
    check(p.stderr == f"tern: error: cannot connect to {missing}: No such file or directory\n",
          f"stderr {p.stderr!r}")
    # a stale socket: nobody listening
    stale = ctx.path("stale.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(stale)
    s.close()
    p = subprocess.run([ctx.tern, "pause", "--api-sock", stale], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=30)
    check(p.returncode == 1 and p.stderr == f"tern: error: cannot connect to {stale}: Connection refused\n",
          f"stale: rc={p.returncode} stderr={p.stderr!r}")
    for argv, needle in ((["status"], "--api-sock is required"),
                         (["snapshot", "--api-sock", stale], "--path is required"),
                         (["pause", "--api-sock", stale, "--no-resume"], "unknown option '--no-resume'"),
                         (["resume", "--api-sock"], "needs a value"),
                         (["shutdown", "--api-sock", stale, "extra"], "unexpected argument 'extra'")):
        p = subprocess.run([ctx.tern] + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=30)
        lines = p.stderr.splitlines()
        check(p.returncode == 1 and len(lines) == 1 and lines[0].startswith("tern: error: ") and needle in lines[0],
              f"tern {argv}: rc={p.returncode} stderr={p.stderr!r}")
    for cmd in ("info", "status", "pause", "resume", "shutdown", "snapshot"):
        p = subprocess.run([ctx.tern, cmd, "--help"], stdout=subprocess.PIPE, text=True, timeout=30)
        check(p.returncode == 0 and f"Usage: tern {cmd} --api-sock PATH" in p.stdout, f"tern {cmd} --help")
    p = subprocess.run([ctx.tern, "--help"], stdout=subprocess.PIPE, text=True, timeout=30)
    check(all(f"  {c} " in p.stdout for c in ("info", "status", "pause", "resume", "shutdown", "snapshot")),
          f"tern --help does not list the client commands: {p.stdout}")
    p = subprocess.run([ctx.tern, "run", "--help"], stdout=subprocess.PIPE, text=True, timeout=30)
    check("--api-sock PATH" in p.stdout, "tern run --help does not document --api-sock")


def test_refuses_existing_non_socket(ctx):
    path = sock_path(ctx)
    with open(path, "w") as f:
        f.write("precious")
    r = run_tern(ctx, ["--kernel", ctx.guest_elf, "--memory", "64M", "--cmdline", "test=halt",
                       "--api-sock", path], testdev=False, timeout=30)
    check(r.rc == 1, "tern should refuse an existing file", r)
    msg = one_error_line(r)
    check(msg == f"--api-sock: '{path}' exists and is not a socket", f"error {msg!r}", r)
    with open(path) as f:
        check(f.read() == "precious", "tern touched the existing file")
    os.mkdir(ctx.path("dir.sock"))
    r = run_tern(ctx, ["--kernel", ctx.guest_elf, "--cmdline", "test=halt", "--api-sock", ctx.path("dir.sock")],
                 testdev=False, timeout=30)
    check(r.rc == 1 and "exists and is not a socket" in one_error_line(r), "a directory must be refused", r)


def test_socket_in_use_and_stale_socket(ctx):
    path = sock_path(ctx)
    # a stale socket (its tern died) is replaced
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()
    api = Api(ctx)
    try:
        check(api.client_ok("status")["state"] == "running", "API on a replaced stale socket")
        # a live one is not: the second tern fails, the first keeps its socket
        r = run_tern(ctx, ["--kernel", ctx.guest_elf, "--cmdline", "test=halt", "--api-sock", path],
                     testdev=False, timeout=30)
        check(r.rc == 1, "a second tern on a live socket should fail", r)
        check(one_error_line(r) == f"--api-sock: '{path}' is in use by another process", "error line", r)
        check(api.client_ok("status")["state"] == "running", "the first tern lost its API")
        r = api.shutdown()
        check(r.rc == 0, "shutdown", r)
        check(not os.path.exists(path), "the socket file outlived tern")
    finally:
        api.kill()


def test_socket_removed_however_tern_ends(ctx):
    path = sock_path(ctx)
    # the guest ends the run
    r = run_tern(ctx, ["--kernel", ctx.guest_elf, "--memory", "64M", "--cmdline", "test=exit exit=7",
                       "--api-sock", path])
    check(r.rc == 7, "guest exit status should pass through", r)
    check(not os.path.exists(path), "socket left after the guest exited")
    # a signal ends it
    api = Api(ctx)
    try:
        api.t.p.send_signal(signal.SIGTERM)
        r = api.t.finish()
        check(r.rc == 1, "SIGTERM should give status 1", r)
        check(not os.path.exists(path), "socket left after SIGTERM")
    finally:
        api.kill()
    # Ctrl-A x on the console
    api = Api(ctx)
    try:
        api.t.send(b"\x01x")
        r = api.t.finish()
        check(r.rc == 0, "Ctrl-A x", r)
        check(not os.path.exists(path), "socket left after Ctrl-A x")
    finally:
        api.kill()
    # tern fails before the guest runs: the socket it made is removed too
    r = run_tern(ctx, ["--kernel", ctx.path("no-kernel"), "--api-sock", path], testdev=False, timeout=30)
    check(r.rc == 1 and "cannot open kernel" in one_error_line(r), "missing kernel", r)
    check(not os.path.exists(path), "socket left after a failed start")


def test_replies_match_the_openapi_spec(ctx):
    """Every reply of a VM with a network device and a disk, errors
    included, and every request the test sends, conform to docs/openapi.json
    (no field missing, none the spec lacks, types and ranges as documented);
    a failed migration's progress too."""
    import openapi_check
    spec = openapi_check.load()
    img = ctx.path("oa.img")
    with open(img, "wb") as f:
        f.truncate(1 << 20)
    wire = ctx.path("oa-wire.sock")
    api = Api(ctx, extra=["--net", f"vdpa-sim,socket={wire},peer={wire}", "--disk", f"path={img},serial=oa"])
    seen = []

    def call(method, path, body=None, status=200, template=None, bad_request=False):
        if body is not None and not bad_request:
            bad = openapi_check.problems(spec, openapi_check.request_schema(spec, template or path, method), body)
            check(not bad, f"the test's own {method} {path} body breaks the spec: {bad}")
        got, reply, _ = api.curl(method, path, json.dumps(body) if body is not None else None)
        check(got == status, f"{method} {path}: HTTP {got}, expected {status}: {reply}")
        schema = openapi_check.reply_schema(spec, template or path, method, status)
        check(schema is not None, f"the spec has no {status} reply for {method} {path}")
        bad = openapi_check.problems(spec, schema, reply)
        check(not bad, f"{method} {path} -> {status}: {bad}; reply {reply}")
        seen.append((method, path, status))
        return reply

    try:
        info = call("GET", "/vm")
        check(len(info["net"]) == 1 and len(info["disks"]) == 1, f"the devices: {info}")
        call("GET", "/vm/status")
        call("PUT", "/vm/pause", {})
        call("PUT", "/vm/resume")
        call("GET", "/vm/migration")
        call("PUT", "/vm/snapshot", {"path": ctx.path("oa-snap"), "resume": True}, status=200)
        call("PUT", "/vm/snapshot", {"path": ctx.path("oa-snap2"), "type": "diff"}, status=400)
        call("PUT", "/vm/migrate", {"to": "unix:" + ctx.path("nobody.sock"), "copy_disks": True,
                                    "connections": 2}, status=202)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            prog = call("GET", "/vm/migration")
            if prog["state"] in ("failed", "cancelled", "completed"):
                break
            time.sleep(0.05)
        check(prog["state"] == "failed" and prog["error"] and prog["copy_disks"] and prog["connections"] == 2,
              f"the failed migration: {prog}")
        call("PUT", "/vm/migrate/cancel", status=409)
        call("PUT", "/vm/migrate", {"to": "nowhere"}, status=400, bad_request=True)
        call("PUT", "/vm/migrate", {"to": "unix:" + ctx.path("nobody.sock"), "connections": 17}, status=400,
             bad_request=True)
        call("PUT", "/vm/pause", {"colour": "red"}, status=400, bad_request=True)
        got, reply, _ = api.curl("GET", "/vm/nothing")
        check(got == 404 and not openapi_check.problems(spec, {"$ref": "#/components/schemas/Error"}, reply),
              f"404: {reply}")
        call("PUT", "/vm/shutdown")
        api.t.finish()
        check(len(seen) >= 12, f"{len(seen)} calls checked")
    finally:
        api.kill()
