//! `backend.cors`: which browser origins may call the API, as Backstage's backend reads it
//! (the options of the `cors` package).

use serde::{Deserialize, Deserializer};

use super::coerce::{Bool, UInt, via};

/// Without it no CORS headers are sent, and browsers only call from the backend's own origin.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a map")]
pub struct CorsConfig {
    /// Exact origins or patterns with `*` (e.g. `https://*.example.com`); `*` alone allows any.
    #[serde(rename = "origin", deserialize_with = "via::<Strings, _>")]
    pub origins: Vec<String>,
    /// Allowed methods; empty means Backstage's default (GET, HEAD, PUT, PATCH, POST, DELETE).
    #[serde(default, deserialize_with = "via::<Tokens, _>")]
    pub methods: Vec<String>,
    /// Allowed request headers; empty means whatever the preflight asks for.
    #[serde(default, deserialize_with = "via::<Tokens, _>")]
    pub allowed_headers: Vec<String>,
    #[serde(default, deserialize_with = "via::<Tokens, _>")]
    pub exposed_headers: Vec<String>,
    #[serde(default, deserialize_with = "via::<Bool, _>")]
    pub credentials: bool,
    #[serde(
        rename = "maxAge",
        default,
        deserialize_with = "via::<Option<UInt<usize>>, _>"
    )]
    pub max_age_seconds: Option<usize>,
}

/// A string or a list of strings.
struct Strings(Vec<String>);

impl<'de> Deserialize<'de> for Strings {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged, expecting = "a string or a list of strings")]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        Ok(Self(match OneOrMany::deserialize(deserializer)? {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }))
    }
}

/// [`Strings`] that are HTTP tokens: method and header names.
struct Tokens(Vec<String>);

impl<'de> Deserialize<'de> for Tokens {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let names = Strings::deserialize(deserializer)?.0;
        match names.iter().find(|name| !is_token(name)) {
            Some(bad) => Err(serde::de::Error::custom(format!(
                "{bad:?} is not a valid HTTP method or header name"
            ))),
            None => Ok(Self(names)),
        }
    }
}

super::coerce::coerced!(Strings => Vec<String>, Tokens => Vec<String>);

/// RFC 9110 `token`: what method and header names are made of.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl CorsConfig {
    /// Whether a request from `origin` may read the answer.
    pub fn allows(&self, origin: &str) -> bool {
        self.origins
            .iter()
            .any(|pattern| glob_match(pattern, origin))
    }
}

/// `*` matches any run of characters; everything else matches itself.
fn glob_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn reads_backstage_cors_options() {
        let config = Config::from_yaml_str(
            "backend:\n  cors:\n    origin: [http://localhost:3000, 'https://*.example.com']\n    \
             methods: [GET, POST]\n    credentials: 'true'\n    maxAge: 600\n",
        )
        .unwrap();
        let cors = config.backend.cors.unwrap();
        assert_eq!(cors.methods, ["GET", "POST"]);
        assert!(cors.credentials);
        assert_eq!(cors.max_age_seconds, Some(600));
        assert!(cors.allows("http://localhost:3000"));
        assert!(cors.allows("https://backstage.example.com"));
        assert!(!cors.allows("http://localhost:3001"));
        assert!(!cors.allows("https://example.com.evil.io"));
        let single = Config::from_yaml_str("backend: {cors: {origin: http://a}}").unwrap();
        assert_eq!(single.backend.cors.unwrap().origins, ["http://a"]);
        assert_eq!(Config::default().backend.cors, None);
        let err = Config::from_yaml_str("backend: {cors: {methods: [GET]}}").unwrap_err();
        assert!(err.to_string().contains("backend.cors"), "{err}");
        let err =
            Config::from_yaml_str("backend: {cors: {origin: '*', methods: ['GE T']}}").unwrap_err();
        assert!(err.to_string().contains("backend.cors.methods"), "{err}");
    }

    #[test]
    fn globs() {
        assert!(glob_match("*", "anything"));
        assert!(glob_match(
            "https://*.example.com",
            "https://a.b.example.com"
        ));
        assert!(!glob_match("https://*.example.com", "https://example.com"));
        assert!(glob_match("http://localhost:*", "http://localhost:3000"));
        assert!(!glob_match("http://a", "http://ab"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
    }
}
