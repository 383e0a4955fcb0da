//! How fields are read: scalars the way Backstage's config reader reads them, and the helpers
//! that put them on the public structs' fields.
//!
//! Substitution (`port: ${PORT}`) always yields a string, so, like Backstage's `getNumber` and
//! `getBoolean`, numbers and booleans may be written as strings. Strings are not coerced from
//! numbers: YAML would already have lost the original spelling (`1e3`, `0x10`). serde_with's
//! `PickFirst<(_, DisplayFromStr)>` would not do: it neither trims nor takes `1e3` or `yes`, and
//! its error replaces serde's `invalid value: integer `70000`, expected u16`.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, Unexpected, Visitor};
use url::Url;

use super::secret::Secret;

/// A newtype that reads a field's value in a way of its own.
pub(super) trait Coerced {
    type Value;
    fn value(self) -> Self::Value;
}

impl<W: Coerced> Coerced for Option<W> {
    type Value = Option<W::Value>;
    fn value(self) -> Self::Value {
        self.map(W::value)
    }
}

impl<W: Coerced> Coerced for Vec<W> {
    type Value = Vec<W::Value>;
    fn value(self) -> Self::Value {
        self.into_iter().map(W::value).collect()
    }
}

/// For `#[serde(deserialize_with = "via::<W, _>")]`: the field reads as `W` does.
pub(super) fn via<'de, W, D>(deserializer: D) -> Result<W::Value, D::Error>
where
    W: Coerced + Deserialize<'de>,
    D: Deserializer<'de>,
{
    W::deserialize(deserializer).map(W::value)
}

/// Implements [`Coerced`] for newtypes over their field.
macro_rules! coerced {
    ($($ty:ty => $value:ty),* $(,)?) => {$(
        impl $crate::config::coerce::Coerced for $ty {
            type Value = $value;
            fn value(self) -> $value {
                self.0
            }
        }
    )*};
}
pub(super) use coerced;

coerced!(Bool => bool, HttpUrl => Url);

impl<T> Coerced for UInt<T> {
    type Value = T;
    fn value(self) -> T {
        self.0
    }
}

impl<T> Coerced for Positive<T> {
    type Value = T;
    fn value(self) -> T {
        self.0
    }
}

impl<const MIN: usize> Coerced for LongSecret<MIN> {
    type Value = Secret<String>;
    fn value(self) -> Secret<String> {
        self.0
    }
}

/// `impl Default` as what an empty map reads: each default is declared once, on its field.
macro_rules! default_from_fields {
    ($($ty:ty),*) => {$(
        impl Default for $ty {
            fn default() -> Self {
                serde_json::from_value(serde_json::Value::Object(Default::default()))
                    .expect("every field has a default")
            }
        }
    )*};
}
pub(super) use default_from_fields;

/// Field defaults, for `#[serde(default = "secs::<30>")]` and the like.
pub(super) fn secs<const N: u64>() -> Duration {
    Duration::from_secs(N)
}

pub(super) fn millis<const N: u64>() -> Duration {
    Duration::from_millis(N)
}

pub(super) fn int<const N: u32>() -> u32 {
    N
}

pub(super) fn size<const N: usize>() -> usize {
    N
}

pub(super) fn yes() -> bool {
    true
}

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
pub(super) struct Positive<T = u32>(pub T);

impl<'de, T: TryFrom<u64> + PartialEq + From<u8>> Deserialize<'de> for Positive<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match UInt::<T>::deserialize(deserializer)?.0 {
            n if n == T::from(0) => Err(de::Error::custom("must be at least 1")),
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
        parse_http_url(&text, text.trim())
            .map(Self)
            .map_err(de::Error::custom)
    }
}

/// `url` (as written: `text`) as an http or https URL.
pub(super) fn parse_http_url(text: &str, url: &str) -> Result<Url, String> {
    match Url::parse(url) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(url),
        Ok(_) => Err(format!("expected an http or https URL, got {text:?}")),
        Err(err) => Err(format!("invalid URL {text:?}: {err}")),
    }
}

/// For an optional secret where an empty string stands for none.
pub(super) fn optional_secret<'de, D>(deserializer: D) -> Result<Option<Secret<String>>, D::Error>
where
    D: Deserializer<'de>,
{
    let secret = Secret::<String>::deserialize(deserializer)?;
    Ok((!secret.is_empty()).then_some(secret))
}

/// A secret of at least `MIN` bytes (an HMAC key, a shared secret): shorter ones can be guessed.
pub(super) struct LongSecret<const MIN: usize>(pub Secret<String>);

impl<const MIN: usize> LongSecret<MIN> {
    pub(super) fn new<E: de::Error>(secret: Secret<String>) -> Result<Self, E> {
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
        Self::new(Secret::deserialize(deserializer)?)
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
            let err = from::<Secret<String>>(value).err().unwrap();
            assert_eq!(
                err,
                "expected a string (the value is not shown: it is a secret)"
            );
        }
        assert_eq!(
            from::<Secret<String>>(json!("s3cr3t")).ok().unwrap().0,
            "s3cr3t"
        );
    }
}
