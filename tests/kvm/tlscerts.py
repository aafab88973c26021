"""Certificates for the TLS migration tests, made with GnuTLS's certtool
(package gnutls-bin): a CA, the destination's (server) and the source's
(client) pairs in the file names tern reads from --tls-dir, and the bad
kinds the tests need (another CA, expired, not yet valid, no SAN for the
host)."""
import os
import shutil
import subprocess

CERTTOOL = "certtool"


def _tool(args, template=None, cwd=None):
    argv = [CERTTOOL] + args
    tpl = None
    if template is not None:
        tpl = os.path.join(os.path.abspath(cwd), "template.tmp")
        with open(tpl, "w") as f:
            f.write(template)
        argv += ["--template", tpl]
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60, cwd=cwd)
    if p.returncode:
        raise RuntimeError(f"certtool {' '.join(args)} failed: {p.stderr[-400:]}")
    if tpl:
        os.unlink(tpl)
    return p.stdout


def _key(path):
    with open(path, "w") as f:
        f.write(_tool(["--generate-privkey", "--key-type", "ecdsa", "--no-text"]))


def make_ca(d, name="tern test CA"):
    d = os.path.abspath(d)
    os.makedirs(d, exist_ok=True)
    _key(os.path.join(d, "ca-key.pem"))
    with open(os.path.join(d, "ca-cert.pem"), "w") as f:
        f.write(_tool(["--generate-self-signed", "--load-privkey", "ca-key.pem", "--no-text"],
                      f'cn = "{name}"\nca\ncert_signing_key\nexpiration_days = 30\n', cwd=d))


def make_pair(d, ca_dir, role, ip="127.0.0.1", activation=None, expiration=None, san=True):
    """role server or client: DIR/role-cert.pem and role-key.pem signed by
    the CA in ca_dir; dates as "YYYY-MM-DD HH:MM:SS" to make it expired or
    not yet valid."""
    d, ca_dir = os.path.abspath(d), os.path.abspath(ca_dir)
    os.makedirs(d, exist_ok=True)
    key = os.path.join(d, f"{role}-key.pem")
    _key(key)
    tpl = f'cn = "tern {role}"\nsigning_key\nencryption_key\n'
    tpl += "tls_www_server\n" if role == "server" else "tls_www_client\n"
    if san and role == "server":
        tpl += f'ip_address = "{ip}"\ndns_name = "localhost"\n'
    if activation:
        tpl += f'activation_date = "{activation}"\n'
    if expiration:
        tpl += f'expiration_date = "{expiration}"\n'
    else:
        tpl += "expiration_days = 30\n"
    with open(os.path.join(d, f"{role}-cert.pem"), "w") as f:
        f.write(_tool(["--generate-certificate", "--load-privkey", key,
                       "--load-ca-certificate", os.path.join(ca_dir, "ca-cert.pem"),
                       "--load-ca-privkey", os.path.join(ca_dir, "ca-key.pem"), "--no-text"], tpl, cwd=d))
    if os.path.abspath(d) != os.path.abspath(ca_dir):
        shutil.copyfile(os.path.join(ca_dir, "ca-cert.pem"), os.path.join(d, "ca-cert.pem"))


def make_dirs(root):
    """A good pair of directories: root/dst (server) and root/src (client),
    both trusting root/ca. Returns (dst_dir, src_dir, ca_dir)."""
    root = os.path.abspath(root)
    ca = os.path.join(root, "ca")
    make_ca(ca)
    dst, src = os.path.join(root, "dst"), os.path.join(root, "src")
    make_pair(dst, ca, "server")
    make_pair(src, ca, "client")
    return dst, src, ca


if __name__ == "__main__":
    # tlscerts.py DIR: DIR/dst (server), DIR/src (client), DIR/ca (for tests/unit/tls_test.c)
    import sys
    make_dirs(sys.argv[1])
