#!/usr/bin/env python3
"""Fails when docs/openapi.json and the API server disagree: the spec's
paths and methods must be exactly cmd/api.c's route table, each request
body schema must name exactly the fields its route accepts (a route that
takes no fields has an empty object, or none), and every JSON key the
server writes into a reply must be a property of some schema in the spec.
(tests/kvm/test_api.py then checks live replies against the schemas.)
Prints each disagreement, then a count."""
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROUTE = re.compile(r'\{\s*"(/[^"]*)",\s*"([A-Z]+)",\s*(BODY_[A-Z]+),\s*([a-z_]+),\s*[a-z_]+\s*\}')
FIELDS = re.compile(r'static const char \*const ([a-z_]+)\[\] = \{([^}]*)\};', re.S)
KEY = re.compile(r'json_object_object_add\(\s*[a-z]+,\s*"([a-z_0-9]+)"')


def resolve(spec, schema):
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def all_properties(spec):
    names = set()
    stack = list(spec["components"]["schemas"].values())
    while stack:
        s = stack.pop()
        if not isinstance(s, dict):
            continue
        for k, v in s.get("properties", {}).items():
            names.add(k)
            stack.append(v)
        stack.extend(x for x in (s.get("items"),) + tuple(s.get("oneOf", ())) if x)
    return names


def main():
    src = open(os.path.join(ROOT, "cmd", "api.c")).read()
    spec = json.load(open(os.path.join(ROOT, "docs", "openapi.json")))
    fields = {name: re.findall(r'"([a-z_]+)"', body) for name, body in FIELDS.findall(src)}
    routes = {(p, m.lower()): (b, f) for p, m, b, f in ROUTE.findall(src)}
    bad = []
    if not routes:
        bad.append("cmd/api.c: no route table found")
    documented = {(p, m) for p, ops in spec["paths"].items() for m in ops}
    for p, m in sorted(set(routes) - documented):
        bad.append(f"{m.upper()} {p}: served, not in docs/openapi.json")
    for p, m in sorted(documented - set(routes)):
        bad.append(f"{m.upper()} {p}: in docs/openapi.json, not served")
    for (p, m), (body, fname) in sorted(routes.items()):
        op = spec["paths"].get(p, {}).get(m)
        if op is None:
            continue
        want = set(fields.get(fname, []))
        rb = op.get("requestBody")
        if body == "BODY_NONE":
            if rb:
                bad.append(f"{m.upper()} {p}: takes no body, the spec has one")
            continue
        if not rb:
            bad.append(f"{m.upper()} {p}: takes a body, the spec has none")
            continue
        schema = resolve(spec, rb["content"]["application/json"]["schema"])
        got = set(schema.get("properties", {}))
        if got != want:
            bad.append(f"{m.upper()} {p}: accepts {sorted(want)}, the spec's body has {sorted(got)}")
        if rb.get("required") != (body == "BODY_REQUIRED"):
            bad.append(f"{m.upper()} {p}: body required is {body == 'BODY_REQUIRED'} in the server")
    props = all_properties(spec)
    for key in sorted(set(KEY.findall(src)) - props):
        bad.append(f"cmd/api.c writes '{key}', which no schema in docs/openapi.json has")
    for b in bad:
        print(b)
    print(f"{len(bad)} disagreements between cmd/api.c and docs/openapi.json")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
