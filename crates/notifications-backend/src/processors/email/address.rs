//! Which addresses get mail: well-formed ones, then upstream's domain allowlist, address
//! allowlist and denylist.

use crate::config::EmailConfig;

/// Upstream's check (zod's `email()`): one `@`; a local part of letters, digits and
/// `_ ' + - .`, not starting or ending with a dot, without `..`; a domain of at least two
/// labels, each starting with a letter or digit, the last of two or more letters. So no
/// whitespace, quotes, commas, semicolons, angle brackets or colons: one plain address only.
pub fn is_valid(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && !local.starts_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_'+-.".contains(c))
        && local
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric() || "_+-".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().rev().skip(1).all(|label| {
            label
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric())
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
    local_ok && domain_ok && !email.contains("..")
}

/// `allowedEmailDomains`, `allowlistEmailAddresses` and `denylistEmailAddresses`, lower-cased.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    pub allowed_domains: Option<Vec<String>>,
    pub allowlist: Option<Vec<String>>,
    pub denylist: Option<Vec<String>>,
}

impl AddressPolicy {
    pub fn from_config(config: &EmailConfig) -> Self {
        Self {
            allowed_domains: config.allowed_email_domains.clone(),
            allowlist: config.allowlist_email_addresses.clone(),
            denylist: config.denylist_email_addresses.clone(),
        }
    }

    /// The addresses of `emails` that may be mailed, in order, each once (ignoring case).
    pub fn filter(&self, emails: Vec<String>) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        emails
            .into_iter()
            .filter(|email| {
                if is_valid(email) {
                    true
                } else {
                    tracing::warn!(email, "skipping an invalid e-mail address");
                    false
                }
            })
            .filter(|email| self.allowed(email))
            .filter(|email| seen.insert(email.trim().to_lowercase()))
            .collect()
    }

    fn allowed(&self, email: &str) -> bool {
        let normalized = email.trim().to_lowercase();
        let listed =
            |list: &Option<Vec<String>>| list.as_ref().is_some_and(|l| l.contains(&normalized));
        let passes = if listed(&self.allowlist) {
            // An allowlisted address is accepted even outside `allowedEmailDomains`.
            true
        } else if let Some(domains) = &self.allowed_domains {
            let domain = &normalized[normalized.rfind('@').map_or(0, |i| i + 1)..];
            let inside = domains.iter().any(|d| d == domain);
            if !inside {
                tracing::debug!(email, "skipping an address outside allowedEmailDomains");
            }
            inside
        } else {
            // An allowlist without domains is closed: only its addresses.
            self.allowlist.is_none()
        };
        if passes && listed(&self.denylist) {
            tracing::warn!(email, "skipping a denylisted e-mail address");
            return false;
        }
        passes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity() {
        for ok in [
            "a@example.com",
            "first.last+tag@mail.example.co",
            "o'neil@example.org",
            "x-y_z@sub-domain.example.io",
        ] {
            assert!(is_valid(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "a@b",
            "a@@example.com",
            "a@b@example.com",
            ".a@example.com",
            "a.@example.com",
            "a..b@example.com",
            "a b@example.com",
            "\"a\"@example.com",
            "a@example.com,b@example.com",
            "a@example.com;b@example.com",
            "<a@example.com>",
            "a:b@example.com",
            "a@-example.com",
            "a@example.c0m",
            "a@example..com",
        ] {
            assert!(!is_valid(bad), "{bad}");
        }
    }

    fn list(items: &[&str]) -> Option<Vec<String>> {
        Some(items.iter().map(|s| s.to_string()).collect())
    }

    fn emails(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn lists() {
        let all = emails(&[
            "a@corp.com",
            "B@Corp.com",
            "c@other.org",
            "boss@gmail.com",
            "bad address",
        ]);
        assert_eq!(
            AddressPolicy::default().filter(all.clone()),
            emails(&["a@corp.com", "B@Corp.com", "c@other.org", "boss@gmail.com"])
        );
        let domains = AddressPolicy {
            allowed_domains: list(&["corp.com"]),
            allowlist: list(&["boss@gmail.com"]),
            denylist: list(&["b@corp.com"]),
        };
        assert_eq!(
            domains.filter(all.clone()),
            emails(&["a@corp.com", "boss@gmail.com"])
        );
        let closed = AddressPolicy {
            allowlist: list(&["c@other.org", "boss@gmail.com"]),
            denylist: list(&["boss@gmail.com"]),
            ..Default::default()
        };
        assert_eq!(closed.filter(all), emails(&["c@other.org"]));
        assert_eq!(
            AddressPolicy::default().filter(emails(&["a@x.com", "A@X.com"])),
            emails(&["a@x.com"]),
            "one mail per address"
        );
    }
}
