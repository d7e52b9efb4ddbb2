"""A small OpenID Connect provider for the external-IdP tests: a real HTTP process that publishes
discovery metadata and a JWKS and issues RS256 access tokens, as Keycloak or Okta would.

Tokens come from the standard client-credentials grant (RFC 6749 §4.4) at /token, with the RFC 8707
`resource` parameter as the audience. Test-only knobs, all on /token: `ttl` (seconds, negative for an
already expired token) and `unpublished=1` (signed with a key the JWKS does not list). POST /rotate
makes a new key the signing key and publishes it beside the old one, as IdPs rotate. GET /stats
counts JWKS fetches.

Signing is PyJWT with `cryptography` keys (both installed with the MCP SDK). Standard library HTTP.

Usage: oidc_provider.py PORT   (prints "ready" once listening)
"""

import json
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

CLIENT_ID = "test-client"
CLIENT_SECRET = "test-secret"


class Keys:
    def __init__(self):
        self.lock = threading.Lock()
        self.published = []  # (kid, private key)
        self.unpublished = (str(uuid.uuid4()), rsa.generate_private_key(public_exponent=65537, key_size=2048))
        self.rotate()

    def rotate(self) -> str:
        kid = str(uuid.uuid4())
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        with self.lock:
            self.published.append((kid, key))
        return kid

    def current(self):
        with self.lock:
            return self.published[-1]

    def jwks(self) -> dict:
        with self.lock:
            keys = []
            for kid, key in self.published:
                jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
                jwk.update({"kid": kid, "use": "sig", "alg": "RS256"})
                keys.append(jwk)
            return {"keys": keys}


class Provider(BaseHTTPRequestHandler):
    keys: Keys
    issuer: str
    jwks_fetches = 0

    def log_message(self, *args):  # quiet
        pass

    def reply(self, status: int, body: dict):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("cache-control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/.well-known/openid-configuration":
            self.reply(200, {
                "issuer": self.issuer,
                "jwks_uri": f"{self.issuer}/jwks",
                "token_endpoint": f"{self.issuer}/token",
                "authorization_endpoint": f"{self.issuer}/authorize",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "grant_types_supported": ["client_credentials"],
            })
        elif self.path == "/jwks":
            Provider.jwks_fetches += 1
            self.reply(200, self.keys.jwks())
        elif self.path == "/stats":
            self.reply(200, {"jwks_fetches": Provider.jwks_fetches})
        else:
            self.reply(404, {"error": "not_found"})

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        if self.path == "/rotate":
            self.reply(200, {"kid": self.keys.rotate()})
            return
        if self.path != "/token":
            self.reply(404, {"error": "not_found"})
            return
        if form.get("grant_type") != "client_credentials":
            self.reply(400, {"error": "unsupported_grant_type"})
            return
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            self.reply(401, {"error": "invalid_client"})
            return
        now = int(time.time())
        ttl = int(form.get("ttl", "300"))
        claims = {
            "iss": self.issuer,
            "sub": form.get("sub", "service-account-ci"),
            "aud": form.get("resource", "urn:nothing"),
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "scope": form.get("scope", ""),
            "client_id": CLIENT_ID,
            "jti": str(uuid.uuid4()),
        }
        kid, key = self.keys.unpublished if form.get("unpublished") == "1" else self.keys.current()
        token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid, "typ": "at+jwt"})
        self.reply(200, {"access_token": token, "token_type": "Bearer", "expires_in": ttl, "kid": kid})


def main() -> int:
    port = int(sys.argv[1])
    Provider.keys = Keys()
    Provider.issuer = f"http://127.0.0.1:{port}"
    server = ThreadingHTTPServer(("127.0.0.1", port), Provider)
    print("ready", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
