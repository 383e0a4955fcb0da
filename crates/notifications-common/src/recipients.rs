use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::NotificationPayload;

/// What a sender posts to create notifications (upstream's `NotificationSendOptions`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NotificationSendOptions {
    pub recipients: NotificationRecipients,
    pub payload: NotificationPayload,
}

/// Who receives a notification: the users behind some entities, or everyone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum NotificationRecipients {
    Entity {
        #[serde(rename = "entityRef")]
        #[cfg_attr(feature = "openapi", schema(value_type = crate::bounds::EntityRefs))]
        entity_ref: OneOrMany,
        /// Matched against the resolved users' refs; a text that is no entity ref matches none.
        #[serde(
            rename = "excludeEntityRef",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::bounds::Texts>))]
        exclude_entity_ref: Option<OneOrMany>,
    },
    Broadcast,
}

impl NotificationRecipients {
    /// Entity recipients from any list of refs.
    pub fn entities<I, S>(refs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::Entity {
            entity_ref: OneOrMany::Many(refs.into_iter().map(Into::into).collect()),
            exclude_entity_ref: None,
        }
    }
}

/// A string or a list of strings (upstream accepts both for `entityRef` and `excludeEntityRef`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s],
            Self::Many(v) => v,
        }
    }

    pub fn as_slice(&self) -> &[String] {
        match self {
            Self::One(s) => std::slice::from_ref(s),
            Self::Many(v) => v,
        }
    }
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OneOrManyVisitor;

        impl<'de> Visitor<'de> for OneOrManyVisitor {
            type Value = OneOrMany;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an entity ref string or an array of entity ref strings")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(OneOrMany::One(v.to_owned()))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(OneOrMany::Many(out))
            }
        }

        deserializer.deserialize_any(OneOrManyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn entity_ref_is_string_or_list() {
        let r: NotificationRecipients =
            serde_json::from_value(json!({"type": "entity", "entityRef": "user:default/a"}))
                .unwrap();
        assert_eq!(
            r,
            NotificationRecipients::Entity {
                entity_ref: OneOrMany::One("user:default/a".into()),
                exclude_entity_ref: None
            }
        );
        let r: NotificationRecipients = serde_json::from_value(json!({
            "type": "entity", "entityRef": ["a", "b"], "excludeEntityRef": "c", "extra": true
        }))
        .unwrap();
        let NotificationRecipients::Entity {
            entity_ref,
            exclude_entity_ref,
        } = r
        else {
            panic!("entity expected")
        };
        assert_eq!(entity_ref.into_vec(), ["a", "b"]);
        assert_eq!(exclude_entity_ref.unwrap().into_vec(), ["c"]);
    }

    #[test]
    fn broadcast_and_bad_types() {
        let r: NotificationRecipients =
            serde_json::from_value(json!({"type": "broadcast"})).unwrap();
        assert_eq!(r, NotificationRecipients::Broadcast);
        assert!(
            serde_json::from_value::<NotificationRecipients>(json!({"type": "invalid"})).is_err()
        );
        assert!(
            serde_json::from_value::<NotificationRecipients>(json!({"type": "entity"})).is_err()
        );
        assert!(
            serde_json::from_value::<NotificationRecipients>(
                json!({"type": "entity", "entityRef": 5})
            )
            .is_err()
        );
        assert!(
            serde_json::from_value::<NotificationRecipients>(
                json!({"type": "entity", "entityRef": [1]})
            )
            .is_err()
        );
    }

    #[test]
    fn serialises_as_upstream_sends() {
        let opts = NotificationSendOptions {
            recipients: NotificationRecipients::entities(["user:default/john.doe"]),
            payload: NotificationPayload {
                title: "hi".into(),
                ..Default::default()
            },
        };
        assert_eq!(
            serde_json::to_value(&opts).unwrap(),
            json!({"recipients": {"type": "entity", "entityRef": ["user:default/john.doe"]},
                   "payload": {"title": "hi"}})
        );
    }
}
