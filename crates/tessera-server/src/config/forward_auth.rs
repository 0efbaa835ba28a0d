//! The `[forward_auth]` section: the hosts that forward authentication's
//! sign-in redirect and `/login`'s `return_to` may send the browser back to
//! (`forward_auth.allowed_hosts`).

use serde::{Deserialize, Serialize};
use tessera_http::allowed_hosts::AllowedHosts;

use super::ConfigError;
use super::env::list;

#[derive(Debug, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(super) struct ForwardAuthSection {
    #[serde(deserialize_with = "list")]
    allowed_hosts: Vec<String>,
}

impl ForwardAuthSection {
    pub(super) fn validate(self) -> Result<AllowedHosts, ConfigError> {
        AllowedHosts::new(&self.allowed_hosts)
            .map_err(|e| ConfigError::at("forward_auth.allowed_hosts", e))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ConfigError, Settings};

    fn load(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::load(
            None,
            vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
    }

    #[test]
    fn allowed_hosts_are_read_and_checked() -> Result<(), ConfigError> {
        assert!(load(&[])?.forward_auth_hosts.is_empty());
        let settings = load(&[(
            "TESSERA_FORWARD_AUTH__ALLOWED_HOSTS",
            "app.example.test, Wiki.Example.test",
        )])?;
        assert!(settings.forward_auth_hosts.contains("app.example.test"));
        assert!(settings.forward_auth_hosts.contains("wiki.example.test"));
        for bad in ["app.example.test:8080", "https://app.example.test", "a b"] {
            let e = load(&[("TESSERA_FORWARD_AUTH__ALLOWED_HOSTS", bad)])
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                e.contains("forward_auth.allowed_hosts")
                    && e.contains("TESSERA_FORWARD_AUTH__ALLOWED_HOSTS"),
                "{bad}: {e}"
            );
        }
        Ok(())
    }

    #[test]
    fn the_readme_example_loads() -> Result<(), ConfigError> {
        let dir = tempfile::tempdir().map_err(|e| ConfigError::at("test", e.to_string()))?;
        let path = dir.path().join("tessera.toml");
        std::fs::write(
            &path,
            r#"
public_url = "https://auth.example.test"
trusted_proxies = ["10.0.0.5"]
cookie.domain = "example.test"
forward_auth.allowed_hosts = ["app.example.test"]
"#,
        )
        .map_err(|e| ConfigError::at("test", e.to_string()))?;
        let settings = Settings::load(Some(&path), Vec::new())?;
        assert_eq!(settings.cookie.domain.as_deref(), Some("example.test"));
        assert!(settings.forward_auth_hosts.contains("app.example.test"));
        Ok(())
    }

    #[test]
    fn the_cookie_domain_must_hold_public_url() -> Result<(), ConfigError> {
        let public = ("TESSERA_PUBLIC_URL", "https://auth.example.test");
        let settings = load(&[public, ("TESSERA_COOKIE__DOMAIN", "example.test")])?;
        assert_eq!(settings.cookie.domain.as_deref(), Some("example.test"));
        assert_eq!(settings.cookie.effective_name(), "__Secure-tessera");
        assert_eq!(load(&[public])?.cookie.domain, None);
        for (bad, vars) in [
            ("com", vec![public]),
            ("other.test", vec![public]),
            (".example.test", vec![public]),
            ("example.test", vec![]),
        ] {
            let mut vars = vars;
            vars.push(("TESSERA_COOKIE__DOMAIN", bad));
            let e = load(&vars).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains("`cookie.domain`"), "{bad}: {e}");
        }
        Ok(())
    }
}
