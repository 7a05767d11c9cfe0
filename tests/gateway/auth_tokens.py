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
from jwt.algorithms import RSAAlgorithm

# JWK "crv" names of the curves the tests use.
CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(obj):
    return b64(json.dumps(obj, separators=(",", ":")).encode())


def ec_jwk(public):
    """The public JWK of an EC key, its x and y at the full size of the curve's coordinates.

    RFC 7518 6.2.1.2 says they MUST be. PyJWT 2.6's ECAlgorithm.to_jwk (Debian's python3-jwt)
    drops a coordinate's leading zero bytes, which one key in 128 has, and streamgate (cjose)
    refuses such a key: the tests then failed at random, their key set one key short."""
    numbers = public.public_numbers()
    size = (public.curve.key_size + 7) // 8
    return {"kty": "EC", "crv": CURVES[public.curve.name], "x": b64(numbers.x.to_bytes(size, "big")),
            "y": b64(numbers.y.to_bytes(size, "big"))}


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
            if isinstance(public, rsa.RSAPublicKey):
                jwk = json.loads(RSAAlgorithm.to_jwk(public))
                jwk.pop("key_ops", None)
            else:
                jwk = ec_jwk(public)
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
