"""The OAuth authorization-code flow in a real browser: headless Chromium
(JavaScript off) driven by selenium from an application on another origin
to Tessera's sign-in and consent pages and back to the application.

Run by tests/browser.rs: python authorize.py BASE SCREENSHOTS FLOWS, where
FLOWS is a JSON object: `callback` (the application's redirect URI, on
another port of 127.0.0.1: another origin), `username`, and three
authorization URLs the application made: `first` (signed out, no consent
yet), `again` (signed out, consent remembered: the sign-in form's answer
goes through /v1/authorize straight to the application) and `deny`
(`prompt=consent`, refused on the consent page). The application's
callback exchanges each code itself and shows the outcome, which this
script reads. Exits non-zero with the reason on the first failure.
"""

import json
import os
import sys

from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from chromium import LAPTOP, PASSWORD, Browser, step

BASE = sys.argv[1].rstrip("/")
SHOTS = sys.argv[2]
FLOWS = json.loads(sys.argv[3])
CALLBACK = FLOWS["callback"]
USERNAME = FLOWS["username"]


def to_callback(b, element):
    """Clicks `element` (a form's button) and waits until the browser is on
    the application's callback page; says plainly what happened if not (a
    redirect the browser refused to follow shows as a console error)."""
    element.click()
    try:
        WebDriverWait(b.driver, 10).until(
            lambda d: d.current_url.startswith(CALLBACK + "?")
            and d.find_elements(By.ID, "result")
        )
    except TimeoutException:
        errors = b.console_errors()
        raise AssertionError(
            f"{b.name} did not reach the application's callback: it is on "
            f"{b.driver.current_url}\nconsole: {errors}\npage: {b.text()}"
        ) from None
    b.check_logs()
    query = b.driver.current_url[len(CALLBACK) + 1:]
    names = sorted(pair.split("=", 1)[0] for pair in query.split("&"))
    return names, b.driver.find_element(By.ID, "result").text


def sign_in(b):
    """On the sign-in page, sent there by /v1/authorize: signs in and
    returns the sign-in button (not clicked yet)."""
    assert b.path().startswith("/login?return_to="), b.path()
    b.fill("username", USERNAME)
    b.fill("password", PASSWORD)
    forms = [
        f
        for f in b.driver.find_elements(By.TAG_NAME, "form")
        if f.get_attribute("action") == BASE + "/login"
    ]
    assert forms, f"no sign-in form on {b.path()}"
    return forms[0].find_element(By.CSS_SELECTOR, "button[type=submit]")


def consent_button(b, decision):
    b.expect("Allow Photos?", f"You are signed in as {USERNAME}", "see your username")
    buttons = [
        button
        for button in b.driver.find_elements(By.CSS_SELECTOR, "form button[type=submit]")
        if button.get_attribute("name") == "decision"
        and button.get_attribute("value") == decision
    ]
    assert buttons, f"no {decision!r} button on the consent page"
    return buttons[0]


def run(b):
    step("JavaScript is off")
    b.javascript_is_off()

    step("signed out: the sign-in page, the consent page, back to the application")
    b.open(FLOWS["first"])
    b.screenshot("authorize-login")
    b.click(sign_in(b))
    assert b.path().startswith("/v1/authorize?"), b.path()
    b.screenshot("authorize-consent")
    b.screenshot("authorize-consent", dark=True)
    names, result = to_callback(b, consent_button(b, "allow"))
    assert names == ["code", "iss", "state"], names
    assert result == f"Signed in as {USERNAME}", result

    step("signed out again, consent remembered: from the sign-in form straight back")
    b.get("/logout")
    b.submit("/logout", "Sign out")
    b.open(FLOWS["again"])
    names, result = to_callback(b, sign_in(b))
    assert names == ["code", "iss", "state"], names
    assert result == f"Signed in as {USERNAME}", result

    step("prompt=consent, denied: back to the application with access_denied")
    b.open(FLOWS["deny"])
    assert b.path().startswith("/v1/authorize?"), b.path()
    names, result = to_callback(b, consent_button(b, "deny"))
    assert names == ["error", "error_description", "iss", "state"], names
    assert result == "Refused: access_denied", result


def main():
    os.makedirs(SHOTS, exist_ok=True)
    b = Browser("browser", LAPTOP, BASE, SHOTS)
    try:
        run(b)
        b.check_requests(allowed=(CALLBACK + "?",))
    finally:
        b.quit()
    step("all good")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAILED: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
