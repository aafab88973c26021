"""tern's state files as records (docs/state-format.md), for tests that
need an odd or hostile snapshot: read them, change the CONFIG tree with
fdtput, write them back with valid CRCs, as a careless or hostile tool
would."""
import os
import struct
import subprocess
import tempfile

from test_migrate import crc32c

REC_CONFIG = 1


def read_records(path):
    """(header bytes, [(type, payload)]) of a state file."""
    with open(path, "rb") as f:
        data = f.read()
    head, pos, recs = data[:16], 16, []
    while pos < len(data):
        typ, _rsvd, n = struct.unpack_from("<IIQ", data, pos)
        recs.append((typ, data[pos + 16:pos + 16 + n]))
        step = 16 + n + 4
        pos += step + (8 - step % 8) % 8
    return head, recs


def write_records(path, head, recs):
    out = bytearray(head)
    for typ, payload in recs:
        rec = struct.pack("<IIQ", typ, 0, len(payload)) + payload
        out += rec + struct.pack("<I", crc32c(rec))
        out += b"\0" * ((8 - (len(rec) + 4) % 8) % 8)
    with open(path, "wb") as f:
        f.write(out)


def set_config(path, prop, value):
    """Sets the string property prop of the CONFIG tree's root."""
    head, recs = read_records(path)
    with tempfile.TemporaryDirectory() as d:
        dtb = os.path.join(d, "config.dtb")
        i = [t for t, _ in recs].index(REC_CONFIG)
        with open(dtb, "wb") as f:
            f.write(recs[i][1])
        subprocess.run(["fdtput", "-t", "s", dtb, "/", prop, value], check=True)
        with open(dtb, "rb") as f:
            recs[i] = (REC_CONFIG, f.read())
    write_records(path, head, recs)


def get_config(path, prop):
    """The string property prop of the CONFIG tree's root, or None."""
    head, recs = read_records(path)
    with tempfile.TemporaryDirectory() as d:
        dtb = os.path.join(d, "config.dtb")
        with open(dtb, "wb") as f:
            f.write(dict(recs).get(REC_CONFIG, b""))
        r = subprocess.run(["fdtget", "-t", "s", dtb, "/", prop], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
        return r.stdout.strip() if r.returncode == 0 else None
