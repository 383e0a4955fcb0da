//! What configuration must not show: secrets, and the passwords in URLs.

use std::fmt;
use std::ops::Deref;

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// A secret (a token, a password, a key). `Debug` prints `[redacted]`, so the structs that hold
/// one derive `Debug`; a configuration error never quotes it. Code that uses the value reads it
/// through `Deref` or [`Secret::expose`].
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Secret<T>(pub(super) T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T: Deref> Deref for Secret<T> {
    type Target = T::Target;

    fn deref(&self) -> &T::Target {
        &self.0
    }
}

impl<T: PartialEq> PartialEq<T> for Secret<T> {
    fn eq(&self, other: &T) -> bool {
        self.0 == *other
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret<String> {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl<A, T: FromIterator<A>> FromIterator<A> for Secret<T> {
    fn from_iter<I: IntoIterator<Item = A>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

/// A string. serde's own messages for scalars of the wrong type would quote the value.
impl<'de> Deserialize<'de> for Secret<String> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SecretVisitor;

        fn hidden<T, E: de::Error>() -> Result<T, E> {
            Err(E::custom(
                "expected a string (the value is not shown: it is a secret)",
            ))
        }

        impl Visitor<'_> for SecretVisitor {
            type Value = String;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
                Ok(v.to_owned())
            }

            fn visit_bool<E: de::Error>(self, _: bool) -> Result<String, E> {
                hidden()
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<String, E> {
                hidden()
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<String, E> {
                hidden()
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<String, E> {
                hidden()
            }
        }

        deserializer.deserialize_any(SecretVisitor).map(Self)
    }
}

/// `url` for logs: a password in the user info (`https://user:secret@host/`, libpq's multi-host
/// URLs too) or in a `password`/`sslpassword` parameter is masked. Without `://`, all of it is.
pub fn loggable_url(url: &(impl AsRef<str> + ?Sized)) -> String {
    let url = url.as_ref();
    let Some((scheme, rest)) = url.split_once("://") else {
        return "***".to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((user_info, hosts)) => match user_info.split_once(':') {
            Some((user, _)) => format!("{user}:***@{hosts}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some((name @ ("password" | "sslpassword"), _)) => format!("{name}=***"),
                    _ => param.to_owned(),
                })
                .collect();
            format!("{path}?{}", params.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}
