"""A man in the middle for migration tests: forwards one migration
connection between a source tern and a destination tern, parses tern's
record framing in both directions (docs/migration.md), and can cut the
connection, flip a bit, go silent (a black hole) or call a hook at a byte
offset or at a record boundary."""
import os
import socket
import struct
import threading

HEADER = 16  # the stream header, then records


class Proxy:
    """listen: ('unix', path) or ('tcp', port); target: the same for the
    destination. Faults (any combination, first one that applies wins):
      cut_at       close both sides once this many source bytes went through
      flip_at      flip one bit (flip_bit, 0-7) of the source byte at that offset
      hole_at      after this many source bytes, forward nothing more either
                   way and close nothing (a black hole)
      on_record    fn(direction, type, index) called after each whole record
                   ('up' = source -> destination, 'down' = back); returning
                   'cut' closes both sides, 'hold' forwards nothing more
    """

    def __init__(self, listen, target, cut_at=None, flip_at=None, flip_bit=0, hole_at=None, on_record=None):
        self.target = target
        self.cut_at, self.flip_at, self.flip_bit, self.hole_at = cut_at, flip_at, flip_bit, hole_at
        self.on_record = on_record
        self.up_bytes = 0
        self.records = []  # (direction, type) in order
        self.cut = self.held = self.closing = False
        self.lock = threading.Lock()
        if listen[0] == "unix":
            self.ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            if os.path.exists(listen[1]):
                os.unlink(listen[1])
            self.ls.bind(listen[1])
            self.addr = f"unix:{listen[1]}"
        else:
            self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.ls.bind(("127.0.0.1", listen[1]))
            self.addr = f"tcp:127.0.0.1:{listen[1]}"
        self.ls.listen(1)
        self.threads = []
        t = threading.Thread(target=self._serve, daemon=True)
        t.start()
        self.threads.append(t)

    def _connect_target(self):
        if self.target[0] == "unix":
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(self.target[1])
        else:
            s = socket.create_connection(("127.0.0.1", self.target[1]))
        return s

    def _serve(self):
        try:
            self.ls.settimeout(60)
            self.src, _ = self.ls.accept()
            self.dst = self._connect_target()
        except OSError:
            return
        finally:
            self.ls.close()
        for direction, a, b in (("up", self.src, self.dst), ("down", self.dst, self.src)):
            t = threading.Thread(target=self._pump, args=(direction, a, b), daemon=True)
            t.start()
            self.threads.append(t)

    def close_both(self):
        with self.lock:
            first, self.cut = not self.cut, True
        for s in (getattr(self, "src", None), getattr(self, "dst", None)):
            if s is not None:
                try:
                    # TCP keeps taking data after a shutdown (the peer's
                    # sends would block until its timeout): a reset, as a
                    # peer that went away gives
                    if first and s.family != socket.AF_UNIX:
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    s.shutdown(socket.SHUT_RDWR)
                    if first and s.family != socket.AF_UNIX:
                        s.close()
                except OSError:
                    pass

    def _pump(self, direction, a, b):
        up = direction == "up"
        buf = b""          # bytes not yet parsed into records
        need_header = up   # the source starts with the 16-byte stream header
        index = 0
        while True:
            try:
                data = a.recv(65536)
            except OSError:
                data = b""
            if not data or self.cut or self.closing:
                if not self.held:
                    self.close_both()
                return
            if self.held:
                continue  # swallowed: a black hole
            if up:
                start = self.up_bytes
                end = start + len(data)
                if self.hole_at is not None and end > self.hole_at:
                    data = data[:max(0, self.hole_at - start)]
                    self.held = True
                if self.cut_at is not None and end > self.cut_at:
                    data = data[:max(0, self.cut_at - start)]
                    self.closing = True
                    self._send(b, data)
                    self.up_bytes += len(data)
                    self.close_both()
                    return
                if self.flip_at is not None and start <= self.flip_at < start + len(data):
                    i = self.flip_at - start
                    data = data[:i] + bytes([data[i] ^ (1 << self.flip_bit)]) + data[i + 1:]
                self.up_bytes += len(data)
            if self.on_record is None:  # raw: a flipped length must not stall us
                if not self._send(b, data):
                    self.close_both()
                    return
                continue
            # forward record by record so that hooks act on boundaries
            buf += data
            out = b""
            while True:
                if need_header:
                    if len(buf) < HEADER:
                        break
                    out, buf = out + buf[:HEADER], buf[HEADER:]
                    need_header = False
                    continue
                if len(buf) < 16:
                    break
                rtype, _, length = struct.unpack_from("<IIQ", buf)
                total = 16 + length + 4
                total += (8 - total % 8) % 8
                if length > (64 << 20) or len(buf) < total:
                    break
                rec, buf = buf[:total], buf[total:]
                with self.lock:
                    self.records.append((direction, rtype))
                act = self.on_record(direction, rtype, index) if self.on_record else None
                index += 1
                if act == "drop-cut":  # this record never arrives
                    self._send(b, out)
                    self.close_both()
                    return
                out += rec
                if act == "cut":
                    # nothing the peer answers to this record gets through
                    # (a READY slipping back to the source before the reset
                    # would let it commit, which is not the cut asked for)
                    self.closing = True
                    self._send(b, out)
                    self.close_both()
                    return
                if act == "hold":
                    self._send(b, out)
                    self.held = True
                    out = b""
                    break
            if self.held and not out:
                continue
            if not self._send(b, out):
                self.close_both()
                return

    @staticmethod
    def _send(b, data):
        try:
            if data:
                b.sendall(data)
            return True
        except OSError:
            return False

    def types(self, direction):
        with self.lock:
            return [t for d, t in self.records if d == direction]


# record types (migrate/stream.h)
CONFIG, STATE, RAM, ZERO, PASS = 1, 2, 16, 17, 18
ACCEPT, REFUSE, READY, GO, DONE, ERROR, NOT_RUN = 32, 33, 34, 35, 36, 37, 38
END = 0xFFFFFFFF
