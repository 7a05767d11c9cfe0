#!/usr/bin/env python3
"""Makes JWK Sets and mints JWTs for the auth tests with PyJWT, independently of streamgate.

Reads a JSON spec on stdin and prints a JSON object {token name: compact JWS}:
  {"keys": {"NAME": "PEM private key file", ...},
   "jwks": [{"out": FILE, "keys": [{"key": NAME, "kid": KID, "alg": ALG (optional)}, ...]}],
   "tokens": [{"name": N, "alg": ALG, "key": NAME, "kid": KID, "claims": {...}, "header": {...}},
              {"name": N, "alg": "HS256", "secret": TEXT, ...},            # HMAC with a secret
              {"name": N, "alg": "HS256", "secret_public_pem": NAME, ...},  # HMAC keyed with a public PEM
              {"name": N, "alg": "none", "claims": {...}},                 # unsigned
              {"name": N, "tamper": OTHER, "claims": {...}}]}              # OTHER's signature, new payload
"""
import base64
import hashlib
import hmac
import json
import sys

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(obj):
    return b64(json.dumps(obj, separators=(",", ":")).encode())


def main():
    spec = json.load(sys.stdin)
    keys = {}
    for name, path in spec.get("keys", {}).items():
        with open(path, "rb") as f:
            keys[name] = serialization.load_pem_private_key(f.read(), None)

    for jwks in spec.get("jwks", []):
        entries = []
        for entry in jwks["keys"]:
            public = keys[entry["key"]].public_key()
            text = (RSAAlgorithm if isinstance(public, rsa.RSAPublicKey) else ECAlgorithm).to_jwk(public)
            jwk = json.loads(text)
            jwk.pop("key_ops", None)
            jwk["kid"] = entry["kid"]
            jwk["use"] = "sig"
            if "alg" in entry:
                jwk["alg"] = entry["alg"]
            entries.append(jwk)
        with open(jwks["out"], "w") as f:
            json.dump({"keys": entries}, f)

    out = {}
    for token in spec.get("tokens", []):
        header = dict(token.get("header", {}))
        if token.get("kid") is not None:
            header["kid"] = token["kid"]
        claims = token.get("claims", {})
        alg = token.get("alg")
        if "tamper" in token:
            head, _, sig = out[token["tamper"]].split(".")
            out[token["name"]] = ".".join([head, segment(claims), sig])
        elif alg == "none":
            out[token["name"]] = jwt.encode(claims, None, algorithm="none", headers=header or None)
        elif "secret_public_pem" in token:
            # PyJWT refuses a PEM as an HMAC secret, as it should: build the attack by hand.
            pem = keys[token["secret_public_pem"]].public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            signing_input = segment({"alg": alg, "typ": "JWT", **header}) + "." + segment(claims)
            mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
            out[token["name"]] = signing_input + "." + b64(mac)
        elif "secret" in token:
            out[token["name"]] = jwt.encode(claims, token["secret"], algorithm=alg, headers=header or None)
        else:
            out[token["name"]] = jwt.encode(claims, keys[token["key"]], algorithm=alg, headers=header or None)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
