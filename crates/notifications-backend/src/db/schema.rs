//! The tables, once for both databases (see `sql_types` for the portable column types).

diesel::table! {
    use diesel::sql_types::{Nullable, Text};
    use crate::db::sql_types::{Jsonb, UtcTimestamp, Uuid};

    notification (id) {
        id -> Uuid,
        user_ref -> Text,
        title -> Text,
        description -> Nullable<Text>,
        severity -> Text,
        link -> Nullable<Text>,
        origin -> Text,
        scope -> Nullable<Text>,
        topic -> Nullable<Text>,
        icon -> Nullable<Text>,
        metadata -> Nullable<Jsonb>,
        created -> UtcTimestamp,
        updated -> Nullable<UtcTimestamp>,
        read -> Nullable<UtcTimestamp>,
        saved -> Nullable<UtcTimestamp>,
    }
}

diesel::table! {
    use diesel::sql_types::{Nullable, Text};
    use crate::db::sql_types::{Jsonb, UtcTimestamp, Uuid};

    broadcast (id) {
        id -> Uuid,
        title -> Text,
        description -> Nullable<Text>,
        severity -> Text,
        link -> Nullable<Text>,
        origin -> Text,
        scope -> Nullable<Text>,
        topic -> Nullable<Text>,
        icon -> Nullable<Text>,
        metadata -> Nullable<Jsonb>,
        created -> UtcTimestamp,
        updated -> Nullable<UtcTimestamp>,
    }
}

diesel::table! {
    use diesel::sql_types::{Nullable, Text};
    use crate::db::sql_types::{UtcTimestamp, Uuid};

    broadcast_user_status (broadcast_id, user_ref) {
        broadcast_id -> Uuid,
        user_ref -> Text,
        read -> Nullable<UtcTimestamp>,
        saved -> Nullable<UtcTimestamp>,
    }
}

diesel::table! {
    use diesel::sql_types::{BigInt, Bool, Nullable, Text};

    user_settings (id) {
        id -> BigInt,
        user_ref -> Text,
        channel -> Text,
        origin -> Text,
        topic -> Nullable<Text>,
        enabled -> Bool,
    }
}

diesel::joinable!(broadcast_user_status -> broadcast (broadcast_id));
diesel::allow_tables_to_appear_in_same_query!(
    notification,
    broadcast,
    broadcast_user_status,
    user_settings
);
