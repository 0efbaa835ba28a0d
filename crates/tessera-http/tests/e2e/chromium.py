"""One headless Chromium driven by selenium, for the browser tests beside
this file (pages.py, authorize.py, passkeys.py).

CHROMIUM and CHROMEDRIVER name the programs, /usr/bin's by default. The
browser runs with JavaScript disabled (the pages work without it) unless
asked for it (passkeys need the pages' one script), keeps its console and
network logs, and fails on any console error (a CSP violation, a missing
file) except a page's own error status, which the tests read on the page
instead.
"""

import base64
import json
import os
import time

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
PASSWORD = "correct horse battery staple"
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


def replaced(element):
    """Whether `element`'s document is gone. Asked in the middle of a
    navigation, Chromium may answer that the node "does not belong to the
    document" instead of calling it stale: the same thing."""
    try:
        element.is_enabled()
        return False
    except StaleElementReferenceException:
        return True
    except WebDriverException as e:
        if "does not belong to the document" in (e.msg or ""):
            return True
        raise


class Browser:
    """One headless Chromium with its own profile (cookies), logs kept.

    `base` is the server under test (paths are relative to it); `shots` the
    directory screenshots go to.
    """

    def __init__(self, name, user_agent, base, shots, javascript=False):
        self.name = name
        self.base = base.rstrip("/")
        self.shots = shots
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
        # The pages must work without JavaScript: the browsers have none,
        # but for the passkey test's.
        if not javascript:
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

    def quit(self):
        self.driver.quit()

    def javascript_is_off(self):
        # With scripting off, a <noscript> element's content is parsed as
        # markup (with it on, as text): proof the browser runs no script.
        # (WebDriver's own commands still work: they do not go through the page.)
        self.driver.get("data:text/html,<noscript><p id=off>off</p></noscript>")
        assert self.driver.find_elements(By.ID, "off"), f"{self.name}: JavaScript is on"
        self.driver.get_log("performance")
        self.driver.get_log("browser")

    def get(self, path):
        self.open(self.base + path)

    def open(self, url):
        """Loads an absolute URL (which may leave the server)."""
        self.driver.get(url)
        self.check_logs()

    def path(self):
        url = self.driver.current_url
        assert url.startswith(self.base), f"{self.name} left the server: {url}"
        return url[len(self.base):]

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
            if f.get_attribute("action") == self.base + form_action
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
        WebDriverWait(self.driver, 10).until(lambda _: replaced(page))
        self.check_logs()

    def console_errors(self):
        """Records the requests made so far and returns the console's errors,
        but for a page's own error status."""
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
        return [
            e
            for e in self.driver.get_log("browser")
            if e.get("level") == "SEVERE"
            and not (
                e.get("source") == "network"
                and e.get("message", "").split(" - Failed to load resource")[0] in self.documents
            )
        ]

    def check_logs(self):
        errors = self.console_errors()
        assert not errors, f"{self.name}: console errors on {self.driver.current_url}: {errors}\n{self.text()}"

    def expect(self, *snippets):
        text = self.text()
        for snippet in snippets:
            assert snippet in text, f"{self.name}: {snippet!r} not on {self.driver.current_url}:\n{text}"

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
            path = os.path.join(self.shots, f"{name}{suffix}-{width}.png")
            with open(path, "wb") as f:
                f.write(base64.b64decode(shot["data"]))
        d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        if dark:
            d.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
        self.check_logs()

    def check_requests(self, allowed=()):
        """Every request went to the server (or to one of the `allowed`
        URL prefixes)."""
        self.check_logs()
        prefixes = (self.base + "/", *allowed)
        outside = [u for u in self.requests if not u.startswith(prefixes)]
        assert self.requests, f"{self.name}: no request was recorded"
        assert not outside, f"{self.name}: requests outside the server: {outside}"
        step(f"{self.name}: all {len(self.requests)} requests went where they should")
