//! Scalars read the way Backstage's config reader reads them.
//!
//! Substitution (`port: ${PORT}`) always yields a string, so, like Backstage's `getNumber` and
//! `getBoolean`, numbers and booleans may be written as strings. Strings are not coerced from
//! numbers: YAML would already have lost the original spelling (`1e3`, `0x10`).

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, Unexpected, Visitor};
use url::Url;

/// An unsigned integer, also accepted as a decimal string.
#[derive(Debug)]
pub(super) struct UInt<T>(pub T);

impl<'de, T: TryFrom<u64>> Deserialize<'de> for UInt<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct UIntVisitor<T>(PhantomData<T>);

        impl<T: TryFrom<u64>> Visitor<'_> for UIntVisitor<T> {
            type Value = T;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(std::any::type_name::<T>())
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
                T::try_from(v).map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
                let v =
                    u64::try_from(v).map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))?;
                self.visit_u64(v)
            }

            // YAML reads `1e3` as a float; Backstage's `Number()` accepts any integral number.
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
                if v.fract() == 0.0 && (0.0..=u64::MAX as f64).contains(&v) {
                    self.visit_u64(v as u64)
                } else {
                    Err(E::invalid_value(Unexpected::Float(v), &self))
                }
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
                let n = v
                    .trim()
                    .parse()
                    .map_err(|_| E::invalid_value(Unexpected::Str(v), &self))?;
                self.visit_u64(n)
            }
        }

        deserializer
            .deserialize_any(UIntVisitor(PhantomData))
            .map(UInt)
    }
}

/// An unsigned integer of at least 1.
#[derive(Debug)]
pub(super) struct Positive(pub u32);

impl<'de> Deserialize<'de> for Positive {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match UInt::<u32>::deserialize(deserializer)?.0 {
            0 => Err(de::Error::custom("must be at least 1")),
            n => Ok(Self(n)),
        }
    }
}

/// A boolean, also accepted as the strings Backstage's `getBoolean` accepts (`"true"`, `"yes"`,
/// `"on"`, `"1"` and their opposites) and as the numbers 0 and 1.
#[derive(Debug)]
pub(super) struct Bool(pub bool);

impl<'de> Deserialize<'de> for Bool {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BoolVisitor;

        impl Visitor<'_> for BoolVisitor {
            type Value = bool;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a boolean")
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
                Ok(v)
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
                match v {
                    0 => Ok(false),
                    1 => Ok(true),
                    _ => Err(E::invalid_value(Unexpected::Unsigned(v), &self)),
                }
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
                match v.trim().to_ascii_lowercase().as_str() {
                    "true" | "yes" | "y" | "on" | "1" => Ok(true),
                    "false" | "no" | "n" | "off" | "0" => Ok(false),
                    _ => Err(E::invalid_value(Unexpected::Str(v), &self)),
                }
            }
        }

        deserializer.deserialize_any(BoolVisitor).map(Bool)
    }
}

/// An absolute `http` or `https` URL.
#[derive(Debug)]
pub(super) struct HttpUrl(pub Url);

impl<'de> Deserialize<'de> for HttpUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let url = Url::parse(text.trim())
            .map_err(|err| de::Error::custom(format!("invalid URL {text:?}: {err}")))?;
        match url.scheme() {
            "http" | "https" => Ok(Self(url)),
            _ => Err(de::Error::custom(format!(
                "expected an http or https URL, got {text:?}"
            ))),
        }
    }
}

/// A string that must not be echoed in errors (a token, a password).
pub(super) struct SecretString(pub String);

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SecretVisitor;

        // serde's own messages for scalars of the wrong type quote the value.
        fn hidden<E: de::Error>() -> E {
            E::custom("expected a string (the value is not shown: it is a secret)")
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
                Err(hidden())
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<String, E> {
                Err(hidden())
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<String, E> {
                Err(hidden())
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<String, E> {
                Err(hidden())
            }
        }

        deserializer.deserialize_any(SecretVisitor).map(Self)
    }
}

/// A secret of at least `MIN` bytes (an HMAC key, a shared secret): shorter ones can be guessed.
pub(super) struct LongSecret<const MIN: usize>(pub String);

impl<const MIN: usize> LongSecret<MIN> {
    pub(super) fn new<E: de::Error>(secret: String) -> Result<Self, E> {
        if secret.len() < MIN {
            return Err(E::custom(format!(
                "must be at least {MIN} bytes long (the value is not shown: it is a secret)"
            )));
        }
        Ok(Self(secret))
    }
}

impl<'de, const MIN: usize> Deserialize<'de> for LongSecret<MIN> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::new(SecretString::deserialize(deserializer)?.0)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn from<T: for<'de> Deserialize<'de>>(value: serde_json::Value) -> Result<T, String> {
        T::deserialize(value).map_err(|err| err.to_string())
    }

    #[test]
    fn integers_accept_numbers_and_decimal_strings() {
        assert_eq!(from::<UInt<u16>>(json!(7007)).unwrap().0, 7007);
        assert_eq!(from::<UInt<u16>>(json!("7007")).unwrap().0, 7007);
        assert_eq!(from::<UInt<u16>>(json!(" 80 ")).unwrap().0, 80);
        assert_eq!(from::<UInt<u16>>(json!(1e3)).unwrap().0, 1000);
        assert_eq!(
            from::<UInt<u16>>(json!(70000)).unwrap_err(),
            "invalid value: integer `70000`, expected u16"
        );
        assert!(from::<UInt<u16>>(json!(-1)).is_err());
        assert!(from::<UInt<u16>>(json!(1.5)).is_err());
        assert!(from::<UInt<u16>>(json!("80a")).is_err());
        assert!(from::<UInt<u16>>(json!(true)).is_err());
        assert_eq!(
            from::<Positive>(json!("0")).unwrap_err(),
            "must be at least 1"
        );
    }

    #[test]
    fn booleans_accept_backstage_spellings() {
        for yes in [
            json!(true),
            json!("true"),
            json!("Yes"),
            json!("on"),
            json!(1),
        ] {
            assert!(from::<Bool>(yes).unwrap().0);
        }
        for no in [
            json!(false),
            json!("FALSE"),
            json!("no"),
            json!("off"),
            json!("0"),
        ] {
            assert!(!from::<Bool>(no).unwrap().0);
        }
        assert!(from::<Bool>(json!("maybe")).is_err());
    }

    #[test]
    fn urls_must_be_absolute_http() {
        let url = from::<HttpUrl>(json!("https://backstage.example.com")).unwrap();
        assert_eq!(url.0.as_str(), "https://backstage.example.com/");
        assert!(
            from::<HttpUrl>(json!("/relative"))
                .unwrap_err()
                .contains("invalid URL")
        );
        assert!(
            from::<HttpUrl>(json!("ftp://x"))
                .unwrap_err()
                .contains("http or https")
        );
    }

    #[test]
    fn secrets_are_not_echoed() {
        for value in [
            json!(123456789),
            json!(-123456789),
            json!(1234.5678),
            json!(true),
        ] {
            let err = from::<SecretString>(value).err().unwrap();
            assert_eq!(
                err,
                "expected a string (the value is not shown: it is a secret)"
            );
        }
        assert_eq!(
            from::<SecretString>(json!("s3cr3t")).ok().unwrap().0,
            "s3cr3t"
        );
    }
}
