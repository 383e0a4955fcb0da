use std::fmt;
use std::str::FromStr;

use crate::{EntityRef, EntityRefError};

/// A user entity ref in its canonical form, `user:<namespace>/<name>` all in lower case
/// ([`EntityRef::canonical`]): the one spelling under which what a user does (read marks,
/// settings) is stored and their notifications are found, whatever case their token used.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserRef(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserRefError {
    #[error(transparent)]
    Malformed(#[from] EntityRefError),
    #[error("Entity reference \"{0}\" is not a user")]
    NotAUser(String),
}

impl UserRef {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&EntityRef> for UserRef {
    type Error = UserRefError;

    fn try_from(entity: &EntityRef) -> Result<Self, Self::Error> {
        if entity.is_kind("user") {
            Ok(Self(entity.canonical()))
        } else {
            Err(UserRefError::NotAUser(entity.to_string()))
        }
    }
}

/// Parses a reference that must name its kind, `user`, in any case.
impl FromStr for UserRef {
    type Err = UserRefError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::try_from(&EntityRef::parse(s)?)
    }
}

impl fmt::Display for UserRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for UserRef {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<UserRef> for String {
    fn from(user: UserRef) -> Self {
        user.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_the_canonical_text_of_a_user_ref() {
        let user: UserRef = "User:Default/Jane.Doe".parse().unwrap();
        assert_eq!(user.as_str(), "user:default/jane.doe");
        assert_eq!(user.to_string(), "user:default/jane.doe");
        assert_eq!(user, "user:default/JANE.DOE".parse().unwrap());
    }

    #[test]
    fn refuses_other_kinds_and_malformed_refs() {
        assert!(matches!(
            "group:default/team".parse::<UserRef>(),
            Err(UserRefError::NotAUser(_))
        ));
        assert!(matches!(
            "jane".parse::<UserRef>(),
            Err(UserRefError::Malformed(_))
        ));
    }
}
