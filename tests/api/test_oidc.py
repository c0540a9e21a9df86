"""OIDC bearer tokens verified against a JWKS served locally (a throwaway RSA key; never the internet)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings

ISSUER = "https://idp.example.test/realms/county"


@pytest.fixture(scope="module")
def idp():
    """A private key and the URL of a JWKS holding its public half."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwks = json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(jwks)

        def log_message(self, *args):
            pass

    srv = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield key, f"http://127.0.0.1:{srv.server_port}/jwks.json"
    srv.shutdown()


def _token(key, **claims):
    base = {"iss": ISSUER, "aud": "onemap", "sub": "u-1", "exp": int(time.time()) + 600}
    return jwt.encode({**base, **claims}, key, algorithm="RS256", headers={"kid": "k1"})


def test_oidc_token_maps_to_known_account(idp, county_db):
    key, url = idp
    s = Settings(database=county_db, secret="x" * 32, oidc_jwks_url=url, oidc_issuer=ISSUER, oidc_audience="onemap")
    with TestClient(create_app(s)) as c:
        h = {"Authorization": f"Bearer {_token(key, preferred_username='leader-A')}"}
        body = c.get("/collections/events/items", params={"limit": 100}, headers=h).json()
        assert {f["properties"]["township_code"] for f in body["features"]} == {"A"}
        bad = _token(key, iss="https://evil.test", preferred_username="admin")
        assert c.get("/collections", headers={"Authorization": f"Bearer {bad}"}).status_code == 401
        expired = _token(key, exp=int(time.time()) - 10, preferred_username="admin")
        assert c.get("/collections", headers={"Authorization": f"Bearer {expired}"}).status_code == 401
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        forged = _token(other, preferred_username="admin")
        assert c.get("/collections", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
