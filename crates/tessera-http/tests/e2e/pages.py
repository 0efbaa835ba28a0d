"""The web pages in a real browser: headless Chromium driven by selenium.

Run by tests/browser.rs with the test server's base URL, a directory for
screenshots and the id of an OAuth client registered with BASE + "/healthz"
as its redirect URI: python pages.py BASE SCREENSHOTS CLIENT_ID (CHROMIUM and
CHROMEDRIVER name the programs, /usr/bin's by default). Both browsers run with
JavaScript disabled (the pages have none); every request they make must go
to BASE, and their consoles must stay free of errors (a CSP violation, a
missing file). Exits non-zero with the reason on the first failure.
"""

import base64
import json
import os
import sys
import time
from urllib.parse import urlencode

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import WebDriverWait

BASE = sys.argv[1].rstrip("/")
SHOTS = sys.argv[2]
CLIENT_ID = sys.argv[3]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a much better passphrase"
LAPTOP = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
PHONE = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)


def step(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class Browser:
    """One headless Chromium with its own profile (cookies), logs kept."""

    def __init__(self, name, user_agent):
        self.name = name
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in [
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-default-apps",
            "--disable-extensions",
            "--disable-sync",
            "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
            "--window-size=1280,900",
            f"--user-agent={user_agent}",
        ]:
            options.add_argument(arg)
        # The pages must work without JavaScript: the browsers have none.
        options.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2}
        )
        options.set_capability(
            "goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"}
        )
        self.driver = webdriver.Chrome(
            service=Service(executable_path=CHROMEDRIVER), options=options
        )
        self.driver.set_page_load_timeout(20)
        self.requests = []
        self.documents = set()

    def get(self, path):
        self.driver.get(BASE + path)
        self.check_logs()

    def path(self):
        url = self.driver.current_url
        assert url.startswith(BASE), f"{self.name} left the server: {url}"
        return url[len(BASE):]

    def text(self):
        return self.driver.find_element(By.TAG_NAME, "body").text

    def fill(self, name, value):
        field = self.driver.find_element(By.NAME, name)
        field.clear()
        field.send_keys(value)

    def submit(self, form_action, button_text=None):
        """Clicks the submit button of the form posting to `form_action`."""
        forms = [
            f
            for f in self.driver.find_elements(By.TAG_NAME, "form")
            if f.get_attribute("action") == BASE + form_action
        ]
        assert forms, f"{self.name}: no form posting to {form_action} on {self.path()}"
        buttons = [
            b
            for f in forms
            for b in f.find_elements(By.CSS_SELECTOR, "button[type=submit]")
            if button_text is None or b.text == button_text
        ]
        assert buttons, f"{self.name}: no button {button_text!r} for {form_action}"
        self.click(buttons[0])

    def click(self, element):
        """Clicks and waits for the next page to replace this one."""
        page = self.driver.find_element(By.TAG_NAME, "html")
        element.click()
        WebDriverWait(self.driver, 10).until(staleness_of(page))
        self.check_logs()

    def check_logs(self):
        # Requests first: they tell which URLs were pages (documents).
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method") == "Network.requestWillBeSent":
                params = message["params"]
                self.requests.append(params["request"]["url"])
                if params.get("type") == "Document":
                    self.documents.add(params["request"]["url"])
        # A page answered with an error status (a refused form: 400, 403,
        # 429) is reported on the console too; the test reads that page's
        # text instead. Every other error fails, a subresource's included.
        errors = [
            e
            for e in self.driver.get_log("browser")
            if e.get("level") == "SEVERE"
            and not (
                e.get("source") == "network"
                and e.get("message", "").split(" - Failed to load resource")[0] in self.documents
            )
        ]
        assert not errors, f"{self.name}: console errors on {self.driver.current_url}: {errors}\n{self.text()}"

    def expect(self, *snippets):
        text = self.text()
        for snippet in snippets:
            assert snippet in text, f"{self.name}: {snippet!r} not on {self.path()}:\n{text}"

    def screenshot(self, name, dark=False):
        """Full-page screenshots at 1280 and 360 px wide; at 320 px the page
        must still fit the screen."""
        d = self.driver
        if dark:
            d.execute_cdp_cmd(
                "Emulation.setEmulatedMedia",
                {"features": [{"name": "prefers-color-scheme", "value": "dark"}]},
            )
        for width in (1280, 360, 320):
            mobile = width < 500
            d.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": 800, "deviceScaleFactor": 1, "mobile": mobile},
            )
            content = d.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
            # Nothing may be wider than the screen (no sideways scrolling).
            assert content["width"] <= width, f"{name}: {content['width']} px wide at {width} px"
            if width == 320:
                continue
            d.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {
                    "width": width,
                    "height": max(int(content["height"]), 480 if mobile else 720),
                    "deviceScaleFactor": 1,
                    "mobile": mobile,
                },
            )
            shot = d.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
            suffix = "-dark" if dark else ""
            path = os.path.join(SHOTS, f"{name}{suffix}-{width}.png")
            with open(path, "wb") as f:
                f.write(base64.b64decode(shot["data"]))
        d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        if dark:
            d.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
        self.check_logs()

    def sessions(self):
        """(device text, is this device, revoke button) per listed session."""
        rows = []
        for li in self.driver.find_elements(By.CSS_SELECTOR, "ul.sessions > li"):
            device = li.find_element(By.CLASS_NAME, "device").text
            rows.append((device, "This device" in device, li.find_element(By.TAG_NAME, "button")))
        return rows

    def check_requests(self):
        self.check_logs()
        outside = [u for u in self.requests if not u.startswith(BASE + "/")]
        assert self.requests, f"{self.name}: no request was recorded"
        assert not outside, f"{self.name}: requests outside the server: {outside}"
        step(f"{self.name}: all {len(self.requests)} requests went to the server")


def main():
    os.makedirs(SHOTS, exist_ok=True)
    laptop = Browser("laptop", LAPTOP)
    phone = None
    try:
        phone = Browser("phone", PHONE)
        run(laptop, phone)
        laptop.check_requests()
        phone.check_requests()
    finally:
        for b in (laptop, phone):
            if b is not None:
                b.driver.quit()
    step("all good")


def run(laptop, phone):
    step("JavaScript is off, and the pages have none")
    for b in (laptop, phone):
        # With scripting off, a <noscript> element's content is parsed as
        # markup (with it on, as text): proof the browser runs no script.
        # (WebDriver's own commands still work: they do not go through the page.)
        b.driver.get("data:text/html,<noscript><p id=off>off</p></noscript>")
        assert b.driver.find_elements(By.ID, "off"), f"{b.name}: JavaScript is on"
        b.driver.get_log("performance")
        b.driver.get_log("browser")
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


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAILED: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
