#!/usr/bin/env python3
"""Two-step verification against a running Tessera, with an independent TOTP
implementation: pyotp plays the authenticator app.

Run by crates/tessera/tests/interop_totp.rs with one argument, a JSON object:
{"issuer": "http://127.0.0.1:PORT", "username": "...", "password": "..."}
(the user registered, without a second factor). It enrols TOTP as a person
would through the API (reading the otpauth:// URI with pyotp), confirms it
with pyotp's code, then signs in on both carriers with pyotp's codes and a
recovery code, and checks the refusals a client meets: the confirming code
replayed, a code of a step too far away, a used recovery code, a spent
mfa_token. Prints one line per check and "all good" at the end; exits
non-zero on the first failure.
"""

import base64
import json
import sys
import time
from urllib.parse import parse_qs, urlparse

import pyotp
import requests

TIMEOUT = 10


def fail(message):
    print(f"FAIL: {message}", flush=True)
    sys.exit(1)


def check(condition, message, detail=""):
    """Passes or stops; `detail` (an answer, which may hold secrets) is
    printed only on failure."""
    if not condition:
        fail(f"{message} {detail}")
    print(f"ok: {message}", flush=True)


def problem_type(response):
    if response.headers.get("content-type") != "application/problem+json":
        fail(f"not problem+json: {response.status_code} {response.text}")
    return response.json()["type"]


def claims(jwt):
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def password_step(base, username, password):
    """A new browser's first step: the mfa_token of the mfa-required answer."""
    browser = requests.Session()
    r = browser.post(
        f"{base}/v1/session",
        json={"username": username, "password": password},
        timeout=TIMEOUT,
    )
    check(r.status_code == 401, "the password alone does not sign in")
    check(
        problem_type(r) == "urn:tessera:problem:mfa-required",
        "the answer is mfa-required",
    )
    check("set-cookie" not in r.headers, "no cookie before the second factor")
    return browser, r.json()["mfa_token"]


def main():
    config = json.loads(sys.argv[1])
    base = config["issuer"].rstrip("/")
    username, password = config["username"], config["password"]

    # Signed in with the password, as before two-step verification.
    me = requests.Session()
    r = me.post(
        f"{base}/v1/session",
        json={"username": username, "password": password},
        timeout=TIMEOUT,
    )
    check(r.status_code == 200, "signed in with the password")
    csrf = {"X-CSRF-Token": r.json()["csrf_token"]}

    # Enrolment: the app reads the otpauth:// URI.
    r = me.post(f"{base}/v1/me/mfa/totp", headers=csrf, timeout=TIMEOUT)
    check(r.status_code == 200, "enrolment started")
    enrolment = r.json()
    uri = enrolment["otpauth_uri"]
    app = pyotp.parse_uri(uri)
    check(isinstance(app, pyotp.TOTP), "pyotp reads the URI as TOTP")
    query = parse_qs(urlparse(uri).query)
    check(query["secret"] == [enrolment["secret"]], "the URI carries the secret")
    check(app.digits == 6 and app.interval == 30, "6 digits, 30-second steps")
    check(app.digest().name == "sha1", "HMAC-SHA-1")
    check(app.issuer == query["issuer"][0], "the issuer is named")
    check(app.name == username, "the account is named")
    check(
        pyotp.TOTP(enrolment["secret"]).now() == app.now(),
        "the typed secret gives the URI's codes",
    )

    # Confirmation with pyotp's current code; recovery codes once.
    confirm_code = app.now()
    r = me.post(
        f"{base}/v1/me/mfa/totp/confirm",
        headers=csrf,
        json={"code": confirm_code},
        timeout=TIMEOUT,
    )
    check(r.status_code == 200, "pyotp's code confirms the enrolment", r.text)
    recovery = r.json()["recovery_codes"]
    check(len(recovery) == 10 and len(set(recovery)) == 10, "ten distinct recovery codes")
    r = me.get(f"{base}/v1/me/mfa", timeout=TIMEOUT)
    check(r.json() == {"totp": True, "recovery_codes": 10, "passkeys": 0}, "TOTP is on", r.text)

    # Cookie sign-in: the confirming code is spent even inside its step;
    # pyotp's code of the next step (within the ±1 step window) signs in.
    browser, token = password_step(base, username, password)
    r = browser.post(
        f"{base}/v1/session/mfa",
        json={"mfa_token": token, "code": confirm_code},
        timeout=TIMEOUT,
    )
    check(r.status_code == 401, "the confirming code is refused when replayed")
    check(problem_type(r) == "urn:tessera:problem:invalid-code", "as invalid-code")
    far = app.at(time.time() - 120)
    if far != app.at(time.time() + 30):
        r = browser.post(
            f"{base}/v1/session/mfa",
            json={"mfa_token": token, "code": far},
            timeout=TIMEOUT,
        )
        check(r.status_code == 401, "a code four steps old is refused")
    next_code = app.at(time.time() + 30)
    r = browser.post(
        f"{base}/v1/session/mfa",
        json={"mfa_token": token, "code": next_code},
        timeout=TIMEOUT,
    )
    check(r.status_code == 200, "pyotp's code signs in", r.text)
    check(r.json()["session"]["amr"] == ["pwd", "otp", "mfa"], "the session says pwd + otp")
    check(browser.get(f"{base}/v1/session", timeout=TIMEOUT).status_code == 200, "the cookie works")
    r = browser.post(
        f"{base}/v1/session/mfa",
        json={"mfa_token": token, "code": recovery[0]},
        timeout=TIMEOUT,
    )
    check(r.status_code == 401, "the mfa_token is spent")
    check(problem_type(r) == "urn:tessera:problem:invalid-mfa-token", "as invalid-mfa-token")

    # Password grant, then the MFA grant with a recovery code.
    tokens = requests.Session()
    r = tokens.post(
        f"{base}/v1/token",
        data={"grant_type": "password", "username": username, "password": password},
        timeout=TIMEOUT,
    )
    check(r.status_code == 401 and r.json()["error"] == "mfa_required", "the password grant asks for the second factor")
    token = r.json()["mfa_token"]
    grant = {"grant_type": "urn:tessera:grant-type:mfa", "mfa_token": token}
    r = tokens.post(f"{base}/v1/token", data={**grant, "code": next_code}, timeout=TIMEOUT)
    check(r.status_code == 400 and r.json()["error"] == "invalid_grant", "a used code is refused at the grant")
    r = tokens.post(f"{base}/v1/token", data={**grant, "code": recovery[0].upper()}, timeout=TIMEOUT)
    check(r.status_code == 200, "a recovery code finishes the grant", r.text)
    access = claims(r.json()["access_token"])
    check(access["amr"] == ["pwd", "otp", "mfa"], "the access token says pwd + otp")

    _, token = password_step(base, username, password)
    r = tokens.post(
        f"{base}/v1/token",
        data={"grant_type": "urn:tessera:grant-type:mfa", "mfa_token": token, "code": recovery[0]},
        timeout=TIMEOUT,
    )
    check(r.status_code == 400, "a cookie sign-in's token is no grant's")
    browser, token = password_step(base, username, password)
    r = browser.post(
        f"{base}/v1/session/mfa",
        json={"mfa_token": token, "code": recovery[0]},
        timeout=TIMEOUT,
    )
    check(r.status_code == 401, "a used recovery code is refused")
    r = browser.post(
        f"{base}/v1/session/mfa",
        json={"mfa_token": token, "code": recovery[1]},
        timeout=TIMEOUT,
    )
    check(r.status_code == 200, "another recovery code signs in")

    # Turned off with the password: the password alone signs in again.
    r = me.delete(
        f"{base}/v1/me/mfa/totp", headers=csrf, json={"password": password}, timeout=TIMEOUT
    )
    check(r.status_code == 204, "turned off with the password")
    r = requests.post(
        f"{base}/v1/session",
        json={"username": username, "password": password},
        timeout=TIMEOUT,
    )
    check(r.status_code == 200, "the password alone signs in again")
    print("all good", flush=True)


if __name__ == "__main__":
    main()
