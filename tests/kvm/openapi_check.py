"""Checks a JSON value against a schema of docs/openapi.json: the part of
OpenAPI 3.0's schema language the spec uses ($ref, type, nullable,
properties, required, additionalProperties, items, maxItems, enum, minimum,
maximum, minLength, maxLength, pattern, oneOf). Returns the problems found
(empty when the value conforms), each with its JSON path."""
import json
import os
import re

SPEC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "openapi.json")

TYPES = {"object": dict, "array": list, "string": str, "boolean": bool}


def load():
    with open(SPEC) as f:
        return json.load(f)


def _resolve(spec, schema):
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _type_ok(t, v):
    if t == "integer":
        return isinstance(v, int) and not isinstance(v, bool)
    if t == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    return isinstance(v, TYPES[t])


def problems(spec, schema, value, where="$"):
    s = _resolve(spec, schema)
    if value is None:
        return [] if s.get("nullable") else [f"{where}: null, not allowed"]
    if "oneOf" in s:
        ok = [o for o in s["oneOf"] if not problems(spec, o, value, where)]
        return [] if len(ok) == 1 else [f"{where}: {value!r} matches {len(ok)} of oneOf"]
    out = []
    t = s.get("type")
    if t and not _type_ok(t, value):
        return [f"{where}: {value!r} is not {t}"]
    if "enum" in s and value not in s["enum"]:
        out.append(f"{where}: {value!r} not in {s['enum']}")
    if "minimum" in s and value < s["minimum"]:
        out.append(f"{where}: {value} < {s['minimum']}")
    if "maximum" in s and value > s["maximum"]:
        out.append(f"{where}: {value} > {s['maximum']}")
    if isinstance(value, str):
        if len(value) < s.get("minLength", 0) or len(value) > s.get("maxLength", len(value)):
            out.append(f"{where}: length {len(value)} out of range")
        if "pattern" in s and not re.search(s["pattern"], value):
            out.append(f"{where}: {value!r} does not match {s['pattern']}")
    if isinstance(value, list):
        if len(value) > s.get("maxItems", len(value)):
            out.append(f"{where}: {len(value)} items > {s['maxItems']}")
        for i, v in enumerate(value):
            out += problems(spec, s.get("items", {}), v, f"{where}[{i}]")
    if isinstance(value, dict):
        props = s.get("properties", {})
        out += [f"{where}: '{k}' is required" for k in s.get("required", []) if k not in value]
        if s.get("additionalProperties") is False:
            out += [f"{where}: '{k}' is not in the spec" for k in value if k not in props]
        for k, v in value.items():
            if k in props:
                out += problems(spec, props[k], v, f"{where}.{k}")
    return out


def reply_schema(spec, path, method, status):
    """The schema of a reply, or None when the spec has no such reply."""
    op = spec["paths"].get(path, {}).get(method.lower())
    r = op and op["responses"].get(str(status))
    return r and r["content"]["application/json"]["schema"]


def request_schema(spec, path, method):
    op = spec["paths"].get(path, {}).get(method.lower())
    rb = op and op.get("requestBody")
    return rb and rb["content"]["application/json"]["schema"]
