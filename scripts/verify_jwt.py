#!/usr/bin/env python3
"""Verify a Tessera access token with an independent JWT implementation.

Usage: verify_jwt.py ISSUER TOKEN EXPECTED_ALG [--expect-failure]

Discovers the key set the way a resource server would (ISSUER's
/.well-known/openid-configuration, then its jwks_uri), picks the key by the
token's `kid` with PyJWT's PyJWKClient and verifies signature, algorithm,
issuer, audience and the required claims with PyJWT, then checks the
`at+jwt` type header and the `sid` claim.

On success prints `ok <alg> <sub>` and exits 0; otherwise prints the reason to
stderr and exits 1.

With --expect-failure the outcome is inverted for the token checks only: it
exits 0 when the token is rejected (and prints why), and 1 when the token
verifies. Failing to fetch the discovery document or the key set is never
counted as a rejection, so a tampered-token check cannot pass vacuously.

Needs PyJWT >= 2.8 with the `crypto` extra (pip install 'pyjwt[crypto]').
"""

import json
import sys
import urllib.request

try:
    import jwt
except ImportError as e:  # pragma: no cover - environment problem
    print(f"verify_jwt.py: PyJWT is not installed ({e}); pip install 'pyjwt[crypto]'", file=sys.stderr)
    sys.exit(1)

REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "jti"]
TIMEOUT_SECONDS = 10


class SetupError(Exception):
    """The verifier could not get as far as looking at the token."""


class Rejected(Exception):
    """The token did not verify."""


def fetch_json(url):
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            return json.load(response)
    except Exception as e:
        raise SetupError(f"cannot fetch {url}: {e}") from e


def discover_jwks_uri(issuer):
    config = fetch_json(f"{issuer}/.well-known/openid-configuration")
    if not isinstance(config, dict):
        raise SetupError("openid-configuration is not a JSON object")
    if config.get("issuer") != issuer:
        raise SetupError(
            f"openid-configuration issuer {config.get('issuer')!r} is not {issuer!r}"
        )
    jwks_uri = config.get("jwks_uri")
    if not isinstance(jwks_uri, str) or not jwks_uri:
        raise SetupError("openid-configuration has no jwks_uri")
    # Fail here, not inside PyJWKClient, if the key set is unreachable or not
    # a key set: that is a setup problem, not a rejected token.
    jwks = fetch_json(jwks_uri)
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise SetupError(f"{jwks_uri} is not a non-empty JWK set")
    return jwks_uri


def verify(issuer, token, expected_alg, jwks_uri):
    """Returns the verified claims or raises Rejected."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as e:
        raise Rejected(f"malformed token header: {e}") from e
    if header.get("typ") != "at+jwt":
        raise Rejected(f"header typ is {header.get('typ')!r}, expected 'at+jwt'")
    if header.get("alg") != expected_alg:
        raise Rejected(f"header alg is {header.get('alg')!r}, expected {expected_alg!r}")

    client = jwt.PyJWKClient(jwks_uri, cache_keys=False, timeout=TIMEOUT_SECONDS)
    try:
        signing_key = client.get_signing_key_from_jwt(token)
    except jwt.PyJWKClientConnectionError as e:
        raise SetupError(f"cannot fetch the key set: {e}") from e
    except jwt.PyJWTError as e:
        raise Rejected(f"no usable key for kid {header.get('kid')!r}: {e}") from e
    key_alg = getattr(signing_key, "algorithm_name", None)
    if key_alg is not None and key_alg != expected_alg:
        raise Rejected(f"JWK for kid {header.get('kid')!r} is for {key_alg!r}, expected {expected_alg!r}")

    try:
        claims = jwt.decode(
            token,
            signing_key.key,
            algorithms=[expected_alg],
            audience=issuer,
            issuer=issuer,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.PyJWTError as e:
        raise Rejected(f"{type(e).__name__}: {e}") from e

    sid = claims.get("sid")
    if not isinstance(sid, str) or not sid:
        raise Rejected(f"sid claim is missing or not a non-empty string: {sid!r}")
    return claims


def main(argv):
    args = argv[1:]
    expect_failure = "--expect-failure" in args
    args = [a for a in args if a != "--expect-failure"]
    if len(args) != 3:
        print("usage: verify_jwt.py ISSUER TOKEN EXPECTED_ALG [--expect-failure]", file=sys.stderr)
        return 1
    issuer, token, expected_alg = args

    try:
        jwks_uri = discover_jwks_uri(issuer)
        claims = verify(issuer, token, expected_alg, jwks_uri)
    except SetupError as e:
        print(f"verify_jwt.py: setup failed: {e}", file=sys.stderr)
        return 1
    except Rejected as e:
        if expect_failure:
            print(f"rejected as expected: {e}")
            return 0
        print(f"verify_jwt.py: token rejected: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # anything unforeseen is a failure, never a pass
        print(f"verify_jwt.py: unexpected error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1

    if expect_failure:
        print(
            f"verify_jwt.py: token verified but was expected to be rejected (sub {claims['sub']!r})",
            file=sys.stderr,
        )
        return 1
    print(f"ok {expected_alg} {claims['sub']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
