"""Passkeys in a real browser: headless Chromium with JavaScript on and a
WebDriver virtual authenticator (CTAP2, internal, resident keys, user
verification), driven by selenium.

Run by tests/browser.rs with the test server's base URL (http://localhost:
WebAuthn needs a host name, and localhost is a secure context over plain
HTTP) and a directory for screenshots: python passkeys.py BASE SCREENSHOTS.
A person's way through: register an account, add a passkey on /account,
sign in with the password and the passkey as the second step (amr `pwd`,
`hwk`), sign in with the passkey alone (the session's amr is `hwk`),
rename and remove it, and see a removed passkey refused. Every request must
go to BASE, and the console stay free of errors but the one refusal
expected. Exits non-zero with the reason on the first failure.
"""

import os
import sys

from selenium.webdriver.common.by import By
from selenium.webdriver.common.virtual_authenticator import (
    Protocol,
    Transport,
    VirtualAuthenticatorOptions,
)
from selenium.webdriver.support.ui import WebDriverWait

from chromium import LAPTOP, PASSWORD, Browser, step

BASE = sys.argv[1].rstrip("/")
SHOTS = sys.argv[2]


def main():
    os.makedirs(SHOTS, exist_ok=True)
    laptop = Browser("laptop", LAPTOP, BASE, SHOTS, javascript=True)
    try:
        run(laptop)
        laptop.check_requests()
    finally:
        laptop.quit()
    step("all good")


def fetch_json(browser, path):
    """GETs `path` from the page (its cookie goes along): the JSON answer."""
    return browser.driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        fetch(arguments[0], { credentials: "same-origin" })
          .then((r) => r.json())
          .then(done, (e) => done({ error: String(e) }));
        """,
        path,
    )


def passkey_names(browser):
    return [
        li.find_element(By.CLASS_NAME, "device").text
        for li in browser.driver.find_elements(By.CSS_SELECTOR, "ul.passkeys > li")
    ]


def run(b):
    d = b.driver
    step("a virtual authenticator: a platform passkey with user verification")
    options = VirtualAuthenticatorOptions()
    options.protocol = Protocol.CTAP2
    options.transport = Transport.INTERNAL
    options.has_resident_key = True
    options.has_user_verification = True
    options.is_user_verified = True
    options.is_user_consenting = True
    d.add_virtual_authenticator(options)

    step("register an account")
    b.get("/register")
    b.fill("username", "carol")
    b.fill("password", PASSWORD)
    b.submit("/register")
    assert b.path() == "/account", b.path()
    b.expect("Passkeys", "You have no passkey yet.")

    step("add a passkey on /account")
    form = d.find_element(By.CSS_SELECTOR, "form[data-passkey=register]")
    assert form.is_displayed(), "the script shows the form where WebAuthn is"
    b.fill("name", "Work laptop")
    b.click(form.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    assert b.path() == "/account?done=passkey-added", b.path()
    b.expect("Your passkey was added")
    assert passkey_names(b) == ["Work laptop"], passkey_names(b)
    credentials = d.get_credentials()
    assert len(credentials) == 1, credentials
    assert credentials[0].is_resident_credential, "a discoverable credential"
    b.screenshot("account-passkeys")

    step("now the password needs a second step: the passkey")
    b.get("/logout")
    b.submit("/logout", "Sign out")
    b.fill("username", "carol")
    b.fill("password", PASSWORD)
    b.submit("/login")
    b.expect("Two-step verification", "Confirm it is you with one of your passkeys.")
    assert not d.find_elements(By.NAME, "code"), "no code to ask for: carol has no TOTP"
    button = d.find_element(By.CSS_SELECTOR, "[data-passkey=second-factor] [data-passkey-button]")
    assert button.is_displayed()
    b.screenshot("login-second-step-passkey")
    b.click(button)
    assert b.path() == "/account", b.path()
    sessions = fetch_json(b, "/v1/me/sessions")
    current = [s for s in sessions if s["current"]]
    assert current[0]["amr"] == ["pwd", "hwk", "mfa"], current

    step("sign out, then in with the passkey alone")
    b.get("/logout")
    b.submit("/logout", "Sign out")
    assert b.path().startswith("/login"), b.path()
    button = d.find_element(By.CSS_SELECTOR, "[data-passkey=sign-in] [data-passkey-button]")
    assert button.is_displayed()
    b.screenshot("login-passkey")
    b.click(button)
    assert b.path() == "/account", b.path()
    b.expect("carol", "Work laptop")

    step("the session says how it was proven: amr hwk")
    sessions = fetch_json(b, "/v1/me/sessions")
    current = [s for s in sessions if s["current"]]
    assert len(current) == 1, sessions
    assert current[0]["amr"] == ["hwk"], current
    passkeys = fetch_json(b, "/v1/me/passkeys")["passkeys"]
    assert passkeys[0]["last_used_at"], passkeys

    step("rename it, then remove it")
    b.fill("name", "Old laptop")
    b.submit("/account/passkeys/rename", "Rename")
    b.expect("The passkey was renamed.")
    assert passkey_names(b) == ["Old laptop"], passkey_names(b)
    b.submit("/account/passkeys/remove", "Remove")
    b.expect("The passkey was removed.", "You have no passkey yet.")

    step("a removed passkey signs no one in")
    b.get("/logout")
    b.submit("/logout", "Sign out")
    d.find_element(By.CSS_SELECTOR, "[data-passkey=sign-in] [data-passkey-button]").click()
    alert = d.find_element(By.CSS_SELECTOR, "[data-passkey=sign-in] [data-passkey-error]")
    WebDriverWait(d, 10).until(lambda _: alert.is_displayed())
    assert "not accepted" in alert.text, alert.text
    assert b.path().startswith("/login"), b.path()
    # The refusal's 401 is on the console; nothing else may be.
    errors = b.console_errors()
    assert errors and all("/v1/passkeys/authenticate/finish" in e["message"] for e in errors), errors


if __name__ == "__main__":
    main()
