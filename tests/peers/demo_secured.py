"""Issue 15 demonstration: the CLI through each proxy kind, Digest, client certificates, pinning.

Run from the repository root:  python tests/peers/demo_secured.py [curl|urllib3]
Every command is a real `python -m urlsession_module get ...` subprocess; proxies are pproxy (PyPI),
Digest is httpbin (PyPI), TLS peers are nginx with trustme certificates.
"""

import base64
import hashlib
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.getcwd())
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.peers._certs import make_certs
from tests.peers.nginx import Nginx
from tests.peers.proxy import Pproxy
from tests.peers.wsgi import Httpbin
from urlsession_module.testing import LocalServer

engine = sys.argv[1] if len(sys.argv) > 1 else "curl"
tmp = Path(tempfile.mkdtemp())
env = dict(os.environ, URLSESSION_ENGINE=engine)
for k in (
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
):
    env.pop(k, None)


def run(args, extra_env=None, show=True):
    cmd = [sys.executable, "-m", "urlsession_module", *args]
    e = dict(env, **(extra_env or {}))
    pre = " ".join(f"{k}={v}" for k, v in (extra_env or {}).items())
    print(f"$ {pre + ' ' if pre else ''}urlsession {' '.join(shlex.quote(a) for a in args)}")
    out = subprocess.run(cmd, capture_output=True, text=True, env=e, timeout=60)
    for line in (out.stdout + out.stderr).strip().splitlines()[-3:]:
        print("   ", line)
    print("    exit", out.returncode)
    return out


def pin_of(cert_pem: Path) -> str:
    cert = x509.load_pem_x509_certificate(cert_pem.read_bytes())
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256//" + base64.b64encode(hashlib.sha256(spki).digest()).decode()


certs = make_certs(tmp / "certs")
with LocalServer() as origin, LocalServer(tls=True) as tls_origin:
    url = origin.url("/bytes/100000")
    print(f"# engine: {engine}; origin {origin.url('/')}")
    for kind, auth in (
        ("http", None),
        ("http", ("puser", "ppass")),
        ("socks5", None),
        ("socks5", ("suser", "spass")),
        ("https", None),
    ):
        with Pproxy(
            tmp / f"p-{kind}-{bool(auth)}",
            kind,
            auth=auth,
            certs=certs if kind == "https" else None,
        ) as p:
            label = f"{kind} proxy{' with Basic auth' if auth and kind == 'http' else ' with user/password' if auth else ''}"
            print(f"\n## {label}")
            extra = ["--cacert", str(certs.ca)] if kind == "https" else []
            run(["get", "-q", "--proxy", p.authed_url, *extra, url, "-o", str(tmp / "f.bin")])
            print("    proxy relayed:", p.connections())
            if kind == "http" and auth is None:
                print(
                    "\n## the same proxy from the environment (http_proxy), then bypassed by --noproxy"
                )
                run(["get", "-q", url, "-o", str(tmp / "g.bin")], {"http_proxy": p.url})
                print("    proxy relayed:", p.connections())
                run(
                    ["get", "-q", "--noproxy", "127.0.0.1", url, "-o", str(tmp / "h.bin")],
                    {"http_proxy": p.url},
                )
                print("    proxy relayed (unchanged):", p.connections())
            if kind == "http" and auth is not None:
                print("\n## the same proxy without its credential: 407, -1013")
                run(["get", "--proxy", p.url, url, "-o", str(tmp / "i.bin")])
    with Httpbin(tmp / "httpbin") as hb:
        for alg in ("MD5", "SHA-256"):
            print(
                f"\n## Digest {alg} (httpbin), credential in the URL (kept beside the request, never in it)"
            )
            u = hb.url(f"/digest-auth/auth/user/passwd/{alg}").replace(
                "http://", "http://user:passwd@"
            )
            run(["get", "--json", u, "-o", str(tmp / "d.json")])
            print(
                "    body:",
                (tmp / "d.json").read_text().strip().replace("\n", " ")[:80]
                if (tmp / "d.json").exists()
                else None,
            )
    with Nginx(
        os.popen("command -v nginx").read().strip() or "/usr/sbin/nginx",
        tmp / "nginx",
        {},
        certs=certs,
        mtls=True,
    ) as ng:
        print("\n## client certificate (nginx ssl_verify_client on, /whoami echoes the subject)")
        run(
            [
                "get",
                "--cacert",
                str(certs.ca),
                "--cert",
                str(certs.client_cert),
                "--key",
                str(certs.client_key),
                ng.url("mtls", "/whoami"),
                "-o",
                "-",
            ]
        )
        run(
            [
                "get",
                "--cacert",
                str(certs.ca),
                "--cert",
                f"{certs.client_p12}:{certs.client_key_password}",
                ng.url("mtls", "/whoami"),
                "-o",
                "-",
            ]
        )
        print(
            "\n## pinning: the server's own key, then a wrong pin (-1202 before any request byte)"
        )
        good = pin_of(certs.server_cert) if hasattr(certs, "server_cert") else None
        print("    pin:", good)
        run(
            [
                "get",
                "--cacert",
                str(certs.ca),
                "--pinnedpubkey",
                good,
                ng.url("https", "/files/1k.bin"),
                "-o",
                str(tmp / "k.bin"),
            ]
        )
        run(
            [
                "get",
                "--cacert",
                str(certs.ca),
                "--pinnedpubkey",
                "sha256//" + base64.b64encode(b"x" * 32).decode(),
                ng.url("https", "/files/1k.bin"),
                "-o",
                str(tmp / "l.bin"),
            ]
        )
        with Pproxy(tmp / "p-connect", "http") as p:
            print("\n## https:// origin through the HTTP proxy (CONNECT)")
            run(
                [
                    "get",
                    "-q",
                    "--cacert",
                    str(certs.ca),
                    "--proxy",
                    p.url,
                    ng.url("https", "/files/1k.bin"),
                    "-o",
                    str(tmp / "m.bin"),
                ]
            )
            print("    proxy relayed:", p.connections())
