"""The web pages in a real browser: headless Chromium driven by selenium.

Run by tests/browser.rs with the test server's base URL, a directory for
screenshots and the id of an OAuth client registered with BASE + "/healthz"
as its redirect URI: python pages.py BASE SCREENSHOTS CLIENT_ID (chromium.py
drives the browsers). Both browsers run with
JavaScript disabled (the pages have none); every request they make must go
to BASE, and their consoles must stay free of errors (a CSP violation, a
missing file). Exits non-zero with the reason on the first failure.
Two-step verification is set up with pyotp playing the authenticator app.
"""

import os
import sys
import time
from urllib.parse import urlencode

import pyotp
from selenium.webdriver.common.by import By

from chromium import LAPTOP, PASSWORD, PHONE, Browser, step

BASE = sys.argv[1].rstrip("/")
SHOTS = sys.argv[2]
CLIENT_ID = sys.argv[3]
NEW_PASSWORD = "a much better passphrase"


class AccountBrowser(Browser):
    """A browser that can read the account page's session list."""

    def __init__(self, name, user_agent):
        super().__init__(name, user_agent, BASE, SHOTS)

    def sessions(self):
        """(device text, is this device, revoke button) per listed session."""
        rows = []
        for li in self.driver.find_elements(By.CSS_SELECTOR, "ul.sessions > li"):
            device = li.find_element(By.CLASS_NAME, "device").text
            rows.append((device, "This device" in device, li.find_element(By.TAG_NAME, "button")))
        return rows


def main():
    os.makedirs(SHOTS, exist_ok=True)
    laptop = AccountBrowser("laptop", LAPTOP)
    phone = None
    try:
        phone = AccountBrowser("phone", PHONE)
        run(laptop, phone)
        laptop.check_requests()
        phone.check_requests()
    finally:
        for b in (laptop, phone):
            if b is not None:
                b.quit()
    step("all good")


def run(laptop, phone):
    step("JavaScript is off, and the pages have none")
    for b in (laptop, phone):
        b.javascript_is_off()
    laptop.get("/login")
    assert not laptop.driver.find_elements(By.TAG_NAME, "script")
    assert not laptop.driver.find_elements(By.CSS_SELECTOR, "[style]")

    step("register")
    laptop.get("/register")
    laptop.screenshot("register")
    laptop.fill("username", "alice")
    laptop.fill("password", "password")
    laptop.submit("/register")
    laptop.expect("Choose another password", "too common")
    laptop.screenshot("register-refused")
    laptop.fill("password", PASSWORD)
    laptop.submit("/register")
    assert laptop.path() == "/account", laptop.path()
    laptop.expect("Your account", "alice", "This device", "Chrome on Linux")

    step("sign out and the wrong-password message")
    laptop.get("/logout")
    laptop.screenshot("logout")
    laptop.submit("/logout", "Sign out")
    assert laptop.path().startswith("/login"), laptop.path()
    laptop.expect("You are signed out.")
    laptop.fill("username", "alice")
    laptop.fill("password", "not my password")
    laptop.submit("/login")
    laptop.expect("The username or password is wrong.")
    laptop.screenshot("login-wrong-password")
    laptop.fill("password", PASSWORD)
    laptop.submit("/login")
    assert laptop.path() == "/account", laptop.path()

    step("sign in from a second browser, sent back where it wanted to go")
    phone.get("/account")
    assert phone.path() == "/login?return_to=%2Faccount" or phone.path() == "/login?return_to=/account", phone.path()
    phone.screenshot("login")
    phone.screenshot("login", dark=True)
    phone.fill("username", "alice")
    phone.fill("password", PASSWORD)
    phone.submit("/login")
    assert phone.path() == "/account", phone.path()
    phone.expect("Chrome on Android")

    step("the first browser sees both sessions and revokes the second")
    laptop.get("/account")
    rows = laptop.sessions()
    assert len(rows) == 2, rows
    assert [current for _, current, _ in rows] == [True, False], rows
    assert "Chrome on Android" in rows[1][0], rows
    laptop.screenshot("account")
    laptop.screenshot("account", dark=True)
    laptop.click(rows[1][2])
    laptop.expect("That device was signed out.")
    assert len(laptop.sessions()) == 1
    phone.get("/account")
    assert phone.path().startswith("/login"), "the revoked browser is signed out: " + phone.path()

    step("change the password")
    laptop.fill("current_password", "not my password")
    laptop.fill("new_password", NEW_PASSWORD)
    laptop.submit("/account/password")
    laptop.expect("The current password is wrong.")
    laptop.screenshot("account-password-refused")
    laptop.fill("current_password", PASSWORD)
    laptop.fill("new_password", NEW_PASSWORD)
    laptop.submit("/account/password")
    assert laptop.path() == "/account?done=password", laptop.path()
    laptop.expect("Your password was changed.")

    step("allow an application, see it on the account page, revoke its access")
    laptop.get("/v1/authorize?" + urlencode({
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": BASE + "/healthz",
        "scope": "openid profile",
        "state": "s-1",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
    }))
    laptop.expect("Allow Photo Album?", "see your username")
    laptop.screenshot("consent")
    laptop.submit("/v1/authorize", "Allow")
    assert laptop.path().startswith("/healthz?code=ac_"), laptop.path()
    laptop.get("/account")
    laptop.expect("Connected applications", "Photo Album", "see your username")
    apps = laptop.driver.find_elements(By.CSS_SELECTOR, "ul.apps > li")
    assert len(apps) == 1, apps
    button = apps[0].find_element(By.TAG_NAME, "button")
    assert button.text == "Revoke access", button.text
    assert button.accessible_name == "Revoke access for Photo Album", button.accessible_name
    laptop.screenshot("account-apps")
    laptop.screenshot("account-apps", dark=True)
    laptop.click(button)
    assert laptop.path() == "/account?done=app-revoked", laptop.path()
    laptop.expect("access was withdrawn", "No application has access to your account.")

    step("sign out everywhere")
    phone.fill("username", "alice")
    phone.fill("password", NEW_PASSWORD)
    phone.submit("/login")
    assert phone.path() == "/account", phone.path()
    laptop.get("/account")
    assert len(laptop.sessions()) == 2
    laptop.submit("/account/sessions/revoke-all", "Sign out everywhere")
    assert laptop.path() == "/login?notice=signed-out", laptop.path()
    phone.get("/account")
    assert phone.path().startswith("/login"), phone.path()
    laptop.get("/account")
    assert laptop.path().startswith("/login"), laptop.path()

    step("a form whose login-CSRF cookie is gone gets a clear page")
    laptop.get("/login")
    laptop.driver.delete_cookie("tessera-login")
    laptop.fill("username", "alice")
    laptop.fill("password", NEW_PASSWORD)
    laptop.submit("/login")
    laptop.expect("This form has expired")
    laptop.screenshot("error-csrf")
    laptop.click(laptop.driver.find_element(By.LINK_TEXT, "Back to sign-in"))
    laptop.fill("username", "alice")
    laptop.fill("password", NEW_PASSWORD)
    laptop.submit("/login")
    assert laptop.path() == "/account", laptop.path()

    step("set up two-step verification: QR code, key, first code, recovery codes")
    laptop.expect("Two-step verification", "Off.")
    laptop.submit("/account/mfa/totp", "Set up an authenticator app")
    assert laptop.path() == "/account?done=totp-pending#two-step", laptop.path()
    qr = laptop.driver.find_elements(By.CSS_SELECTOR, "div.qr > svg[role=img]")
    assert len(qr) == 1 and qr[0].size["width"] >= 150, qr
    secrets = laptop.driver.find_elements(By.CSS_SELECTOR, "code.secret")
    key, uri = secrets[0].text.replace(" ", ""), secrets[1].text
    app = pyotp.parse_uri(uri)
    assert app.secret == key, (app.secret, key)
    laptop.screenshot("account-totp-setup")
    laptop.screenshot("account-totp-setup", dark=True)
    laptop.fill("code", "000000" if app.now() != "000000" else "111111")
    laptop.submit("/account/mfa/totp/confirm")
    laptop.expect("That code is wrong.")
    laptop.fill("code", app.now())
    laptop.submit("/account/mfa/totp/confirm")
    laptop.expect("Your recovery codes", "Two-step verification is on.")
    codes = [c.text for c in laptop.driver.find_elements(By.CSS_SELECTOR, "ul.codes code")]
    assert len(codes) == 10, codes
    laptop.screenshot("account-recovery-codes")
    laptop.get("/account")
    laptop.expect("Recovery codes left: 10")
    assert not laptop.driver.find_elements(By.CSS_SELECTOR, "ul.codes"), "shown once"

    step("sign in in two steps: the password, then a code")
    phone.get("/account")
    phone.fill("username", "alice")
    phone.fill("password", NEW_PASSWORD)
    phone.submit("/login")
    phone.expect("Two-step verification", "authenticator app")
    phone.screenshot("login-code")
    phone.screenshot("login-code", dark=True)
    phone.fill("code", codes[0].upper())
    phone.submit("/login")
    assert phone.path() == "/account", phone.path()
    other = AccountBrowser("tablet", PHONE)
    try:
        other.get("/login")
        other.fill("username", "alice")
        other.fill("password", NEW_PASSWORD)
        other.submit("/login")
        other.fill("code", "123")
        other.submit("/login")
        other.expect("That code is wrong or was used already.")
        # The next step's code: the current one was spent confirming.
        other.fill("code", app.at(time.time() + 30))
        other.submit("/login")
        assert other.path() == "/account", other.path()
        other.check_requests()
    finally:
        other.quit()

    step("turn two-step verification off with the password")
    laptop.get("/account")
    laptop.fill("password", "not my password")
    laptop.submit("/account/mfa/totp/disable")
    laptop.expect("The password is wrong.")
    laptop.fill("password", NEW_PASSWORD)
    laptop.submit("/account/mfa/totp/disable")
    assert laptop.path() == "/account?done=totp-off", laptop.path()
    laptop.expect("Two-step verification is off")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAILED: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
