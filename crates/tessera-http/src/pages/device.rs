//! A user agent string as a person names their device: "Firefox on
//! Windows", "Safari on iPhone", "curl". Only a hint for telling sessions
//! apart (user agents lie); the account page shows the full string too.

/// Browsers, most specific first: many user agents name several (Edge says
/// Chrome and Safari too).
const BROWSERS: &[(&str, &str)] = &[
    ("Edg/", "Edge"),
    ("EdgA/", "Edge"),
    ("EdgiOS/", "Edge"),
    ("OPR/", "Opera"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("Vivaldi/", "Vivaldi"),
    ("YaBrowser/", "Yandex Browser"),
    ("FxiOS/", "Firefox"),
    ("CriOS/", "Chrome"),
    ("Firefox/", "Firefox"),
    ("HeadlessChrome/", "Headless Chrome"),
    ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"),
    ("Version/", "Safari"),
    ("curl/", "curl"),
    ("Wget/", "Wget"),
    ("python-requests/", "Python requests"),
    ("okhttp/", "OkHttp"),
    ("PostmanRuntime/", "Postman"),
];

/// Systems, most specific first (Android says Linux too, iOS says Mac OS X).
const SYSTEMS: &[(&str, &str)] = &[
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Android", "Android"),
    ("CrOS", "ChromeOS"),
    ("Windows", "Windows"),
    ("Macintosh", "macOS"),
    ("Mac OS X", "macOS"),
    ("Linux", "Linux"),
    ("FreeBSD", "FreeBSD"),
];

/// Longest fallback name taken from an unknown user agent.
const MAX_FALLBACK_CHARS: usize = 40;

/// A short description of the device behind `user_agent`.
pub fn describe(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent.map(str::trim).filter(|ua| !ua.is_empty()) else {
        return "Unknown device".into();
    };
    let browser = BROWSERS
        .iter()
        .find(|(marker, _)| ua.contains(marker))
        .map(|(_, name)| *name);
    let system = SYSTEMS
        .iter()
        .find(|(marker, _)| ua.contains(marker))
        .map(|(_, name)| *name);
    match (browser, system) {
        (Some(browser), Some(system)) => format!("{browser} on {system}"),
        (Some(browser), None) => browser.to_owned(),
        (None, Some(system)) => format!("Browser on {system}"),
        // An unknown program: its own name, the product token before `/`.
        (None, None) => ua
            .split(['/', ' '])
            .next()
            .unwrap_or(ua)
            .chars()
            .take(MAX_FALLBACK_CHARS)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_user_agents_read_as_people_say_them() {
        let cases = [
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
                "Edge on Windows",
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
                "Firefox on Linux",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
                "Safari on iPhone",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
                "Chrome on macOS",
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36",
                "Chrome on Android",
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/126.0.0.0 Safari/537.36",
                "Headless Chrome on Linux",
            ),
            ("curl/8.5.0", "curl"),
            ("tessera-tests", "tessera-tests"),
            ("MyApp/2.1 (build 7)", "MyApp"),
        ];
        for (ua, expected) in cases {
            assert_eq!(describe(Some(ua)), expected, "{ua}");
        }
        assert_eq!(describe(None), "Unknown device");
        assert_eq!(describe(Some("  ")), "Unknown device");
        assert_eq!(
            describe(Some(&"x".repeat(300))).chars().count(),
            MAX_FALLBACK_CHARS
        );
    }
}
