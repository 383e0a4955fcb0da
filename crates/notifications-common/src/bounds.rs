//! The bounds of the text the API takes: what the backend refuses with a 400, and (with the
//! `openapi` feature) the schemas that say so in the OpenAPI document, so that clients and
//! property tests know them.

/// The length of the `varchar(255)` columns (titles, topics, refs, setting ids), in characters.
pub const MAX_SHORT_TEXT: usize = 255;

#[cfg(feature = "openapi")]
pub use schemas::*;

#[cfg(feature = "openapi")]
mod schemas {
    use utoipa::openapi::schema::{
        ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
    };
    use utoipa::openapi::{Ref, RefOr};
    use utoipa::{PartialSchema, ToSchema};

    use super::MAX_SHORT_TEXT;

    /// PostgreSQL text cannot hold NUL characters, so no text may.
    const NO_NUL: &str = r"^[^\x00]*$";

    fn text(description: &str) -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(NO_NUL))
            .description(Some(description))
    }

    fn reference<T: ToSchema>() -> RefOr<Schema> {
        RefOr::Ref(Ref::from_schema_name(T::name()))
    }

    /// Declares a named string schema.
    macro_rules! string_schema {
        ($(#[$doc:meta])* $name:ident => $schema:expr) => {
            $(#[$doc])*
            pub struct $name;

            impl PartialSchema for $name {
                fn schema() -> RefOr<Schema> {
                    $schema.into()
                }
            }

            impl ToSchema for $name {}
        };
    }

    string_schema!(
        /// Any text without NUL characters.
        Text => text("Text without NUL characters.")
    );

    string_schema!(
        /// Text of at least one character (a query value: an empty one is refused).
        NonEmptyText => text("At least one character, without NUL characters.").min_length(Some(1))
    );

    string_schema!(
        /// Text of at most [`MAX_SHORT_TEXT`] characters.
        ShortText => text("At most 255 characters, without NUL characters.")
            .max_length(Some(MAX_SHORT_TEXT))
    );

    string_schema!(
        /// Text of 1 to [`MAX_SHORT_TEXT`] characters: a title, a settings id.
        NonEmptyShortText => text("1 to 255 characters, without NUL characters.")
            .min_length(Some(1))
            .max_length(Some(MAX_SHORT_TEXT))
    );

    string_schema!(
        /// An entity ref with its kind, as the recipients resolver parses it.
        EntityRefText => text(
            "An entity ref with its kind: `<kind>:[<namespace>/]<name>`, e.g. \
             `user:default/jane.doe` or `group:default/team-a`; at most 255 characters.",
        )
        .pattern(Some(r"^[^:/\x00]+:[^/\x00]+(/[^\x00]+)?$"))
        .max_length(Some(MAX_SHORT_TEXT))
    );

    /// One entity ref or a list of them (`entityRef`).
    pub struct EntityRefs;

    impl PartialSchema for EntityRefs {
        fn schema() -> RefOr<Schema> {
            OneOfBuilder::new()
                .item(reference::<EntityRefText>())
                .item(ArrayBuilder::new().items(reference::<EntityRefText>()))
                .into()
        }
    }

    impl ToSchema for EntityRefs {
        fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
            schemas.push((EntityRefText::name().into(), EntityRefText::schema()));
        }
    }

    /// One text or a list of them (`excludeEntityRef`: matched as text, never parsed).
    pub struct Texts;

    impl PartialSchema for Texts {
        fn schema() -> RefOr<Schema> {
            OneOfBuilder::new()
                .item(reference::<Text>())
                .item(ArrayBuilder::new().items(reference::<Text>()))
                .into()
        }
    }

    impl ToSchema for Texts {
        fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
            schemas.push((Text::name().into(), Text::schema()));
        }
    }

    /// `payload.metadata`: any JSON object without NUL characters in its keys or strings,
    /// however deep.
    pub struct Metadata;

    impl PartialSchema for Metadata {
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .description(Some(
                    "Opaque JSON for processors and clients; no NUL characters in keys or strings.",
                ))
                .property_names(Some(text("A key without NUL characters.")))
                .additional_properties(Some(reference::<MetadataValue>()))
                .into()
        }
    }

    impl ToSchema for Metadata {
        fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
            schemas.push((MetadataValue::name().into(), MetadataValue::schema()));
            MetadataValue::schemas(schemas);
        }
    }

    /// A value inside [`Metadata`].
    pub struct MetadataValue;

    impl PartialSchema for MetadataValue {
        fn schema() -> RefOr<Schema> {
            let scalars = [Type::Number, Type::Boolean, Type::Null];
            OneOfBuilder::new()
                .item(reference::<Text>())
                .item(ObjectBuilder::new().schema_type(SchemaType::from_iter(scalars)))
                .item(ArrayBuilder::new().items(reference::<MetadataValue>()))
                .item(reference::<Metadata>())
                .into()
        }
    }

    impl ToSchema for MetadataValue {
        fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
            schemas.push((Text::name().into(), Text::schema()));
        }
    }
}
