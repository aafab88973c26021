#!/usr/bin/env python3
"""Fails on an include that points up the layer order (docs/design.md):
vmm < vdpa < devices < migrate < cmd. A file may include headers of its own
folder and of the folders before it; firmware/ only firmware/ (abi.h is
shared with the host side: vmm/ and above may include it); tests/ anything.
Prints each upward include as FILE:LINE: INCLUDE, then a count."""
import os
import re
import sys

ORDER = ["firmware", "vmm", "vdpa", "devices", "migrate", "cmd"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/[^"]+"')


def allowed(src, dst):
    if src == dst:
        return True
    if src == "firmware":
        return False
    return dst in ORDER and ORDER.index(dst) < ORDER.index(src)


def main():
    bad = []
    for layer in ORDER:
        d = os.path.join(ROOT, layer)
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            if not name.endswith((".c", ".h")):
                continue
            with open(os.path.join(d, name), errors="replace") as f:
                for n, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if m and m.group(1) in ORDER and not allowed(layer, m.group(1)):
                        bad.append(f"{layer}/{name}:{n}: {line.strip()}")
    for b in bad:
        print(b)
    print(f"{len(bad)} upward include{'s' if len(bad) != 1 else ''}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
