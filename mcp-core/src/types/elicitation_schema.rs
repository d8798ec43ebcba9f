//! Typed form schemas for form-mode elicitation: a flat object whose
//! properties are strings, numbers, booleans or enumerations.
//!
//! ```
//! use mcp_core::types::{ElicitRequestParams, ElicitationSchema, PrimitiveSchemaDefinition};
//!
//! let schema = ElicitationSchema::new()
//!     .required_property("name", PrimitiveSchemaDefinition::string())
//!     .property("subscribe", PrimitiveSchemaDefinition::boolean());
//! let params = ElicitRequestParams::form("Who are you?", schema);
//! let v = serde_json::to_value(&params).unwrap();
//! assert_eq!(v["requestedSchema"]["type"], "object");
//! assert_eq!(v["requestedSchema"]["properties"]["subscribe"]["type"], "boolean");
//! assert_eq!(v["requestedSchema"]["required"], serde_json::json!(["name"]));
//! ```

use std::collections::BTreeMap;

use serde::de::{Error as _, Unexpected};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::JsonObject;
use super::serde_util::compact_opt_f64;

/// Declares a unit type that is written as, and only reads, one fixed string.
macro_rules! type_tag {
    ($(#[$doc:meta])* $name:ident = $value:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
        pub struct $name;

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str($value)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = String::deserialize(deserializer)?;
                if s == $value { Ok($name) } else { Err(D::Error::invalid_value(Unexpected::Str(&s), &$value)) }
            }
        }
    };
}

type_tag!(
    /// The `"object"` type tag.
    ObjectType = "object"
);
type_tag!(
    /// The `"string"` type tag.
    StringType = "string"
);
type_tag!(
    /// The `"boolean"` type tag.
    BooleanType = "boolean"
);
type_tag!(
    /// The `"array"` type tag.
    ArrayType = "array"
);

/// The requested schema of a form-mode elicitation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ElicitationSchema {
    /// The JSON Schema dialect, when not the default.
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Always `"object"`.
    #[serde(rename = "type")]
    pub r#type: ObjectType,
    /// The form fields by name.
    pub properties: BTreeMap<String, PrimitiveSchemaDefinition>,
    /// The fields that must be filled in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<Vec<String>>,
}

impl ElicitationSchema {
    /// A form with no fields.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an optional field.
    #[must_use]
    pub fn property(mut self, name: impl Into<String>, schema: impl Into<PrimitiveSchemaDefinition>) -> Self {
        self.properties.insert(name.into(), schema.into());
        self
    }

    /// Adds a required field.
    #[must_use]
    pub fn required_property(
        mut self,
        name: impl Into<String>,
        schema: impl Into<PrimitiveSchemaDefinition>,
    ) -> Self {
        let name = name.into();
        self.required.get_or_insert_with(Vec::new).push(name.clone());
        self.properties.insert(name, schema.into());
        self
    }

    /// Reads a schema from the JSON object of `requestedSchema`.
    pub fn from_object(object: &JsonObject) -> Result<Self, serde_json::Error> {
        serde_json::from_value(Value::Object(object.clone()))
    }
}

impl From<ElicitationSchema> for JsonObject {
    fn from(schema: ElicitationSchema) -> Self {
        match serde_json::to_value(schema) {
            Ok(Value::Object(map)) => map,
            _ => JsonObject::new(),
        }
    }
}

/// One form field. Variants are told apart by `type` and by which of
/// `enum`, `enumNames`, `oneOf` and `items.anyOf` are present.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PrimitiveSchemaDefinition {
    /// A single choice with a title per value (`oneOf` of `const`/`title`).
    TitledSingleSelect(TitledSingleSelectEnumSchema),
    /// A single choice with display names in `enumNames` (2025-06-18 style).
    LegacyTitledEnum(LegacyTitledEnumSchema),
    /// A single choice from `enum`.
    UntitledSingleSelect(UntitledSingleSelectEnumSchema),
    /// A string.
    String(StringSchema),
    /// A number or an integer.
    Number(NumberSchema),
    /// A boolean.
    Boolean(BooleanSchema),
    /// Several choices with a title per value (`items.anyOf`).
    TitledMultiSelect(TitledMultiSelectEnumSchema),
    /// Several choices from `items.enum`.
    UntitledMultiSelect(UntitledMultiSelectEnumSchema),
}

impl PrimitiveSchemaDefinition {
    /// A plain string field.
    pub fn string() -> Self {
        Self::String(StringSchema::default())
    }

    /// A number field.
    pub fn number() -> Self {
        Self::Number(NumberSchema::default())
    }

    /// An integer field.
    pub fn integer() -> Self {
        Self::Number(NumberSchema { r#type: NumberType::Integer, ..NumberSchema::default() })
    }

    /// A boolean field.
    pub fn boolean() -> Self {
        Self::Boolean(BooleanSchema::default())
    }

    /// A single choice among `values`.
    pub fn single_select<S: Into<String>>(values: impl IntoIterator<Item = S>) -> Self {
        Self::UntitledSingleSelect(UntitledSingleSelectEnumSchema {
            enum_values: values.into_iter().map(Into::into).collect(),
            ..UntitledSingleSelectEnumSchema::default()
        })
    }
}

macro_rules! into_definition {
    ($($ty:ident => $variant:ident),* $(,)?) => {$(
        impl From<$ty> for PrimitiveSchemaDefinition {
            fn from(value: $ty) -> Self {
                Self::$variant(value)
            }
        }
    )*};
}

into_definition!(
    StringSchema => String,
    NumberSchema => Number,
    BooleanSchema => Boolean,
    UntitledSingleSelectEnumSchema => UntitledSingleSelect,
    TitledSingleSelectEnumSchema => TitledSingleSelect,
    LegacyTitledEnumSchema => LegacyTitledEnum,
    UntitledMultiSelectEnumSchema => UntitledMultiSelect,
    TitledMultiSelectEnumSchema => TitledMultiSelect,
);

/// A format a string field must have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StringFormat {
    /// An email address.
    Email,
    /// A URI.
    Uri,
    /// A calendar date.
    Date,
    /// A date and time.
    DateTime,
}

/// A string field.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StringSchema {
    /// Always `"string"`.
    #[serde(rename = "type")]
    pub r#type: StringType,
    /// The field's label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Help text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The least number of characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u64>,
    /// The greatest number of characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
    /// A regular expression the value must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// A format the value must have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<StringFormat>,
    /// The initial value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

/// Whether a number field takes any number or only integers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NumberType {
    /// `"number"`.
    #[default]
    Number,
    /// `"integer"`.
    Integer,
}

/// A number field.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NumberSchema {
    /// `"number"` or `"integer"`.
    #[serde(rename = "type")]
    pub r#type: NumberType,
    /// The field's label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Help text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The least value.
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "compact_opt_f64")]
    pub minimum: Option<f64>,
    /// The greatest value.
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "compact_opt_f64")]
    pub maximum: Option<f64>,
    /// The initial value.
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "compact_opt_f64")]
    pub default: Option<f64>,
}

/// A boolean field.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BooleanSchema {
    /// Always `"boolean"`.
    #[serde(rename = "type")]
    pub r#type: BooleanType,
    /// The field's label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Help text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The initial value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<bool>,
}

/// One titled choice: a value and its label.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnumOption {
    /// The value submitted.
    #[serde(rename = "const")]
    pub value: String,
    /// The label shown.
    pub title: String,
}

/// A single choice among plain values.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UntitledSingleSelectEnumSchema {
    /// Always `"string"`.
    #[serde(rename = "type")]
    pub r#type: StringType,
    /// The field's label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Help text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The allowed values.
    #[serde(rename = "enum")]
    pub enum_values: Vec<String>,
    /// The initial value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

/// A single choice among titled values (2025-11-25 and later).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TitledSingleSelectEnumSchema {
    /// Always `"string"`.
    #[serde(rename = "type")]
    pub r#type: StringType,
    /// The field's label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Help text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The choices.
    pub one_of: Vec<EnumOption>,
    /// The initial value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

/// A single choice with display names in a parallel `enumNames` list (deprecated form).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyTitledEnumSchema {
    /// Always `"string"`.
    #[serde(rename = "type")]
    pub r#type: StringType,
    /// The field's label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Help text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The allowed values.
    #[serde(rename = "enum")]
    pub enum_values: Vec<String>,
    /// A display name per value.
    pub enum_names: Vec<String>,
    /// The initial value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

/// The `items` of an untitled multi-select: plain values.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UntitledEnumItems {
    /// Always `"string"`.
    #[serde(rename = "type")]
    pub r#type: StringType,
    /// The allowed values.
    #[serde(rename = "enum")]
    pub enum_values: Vec<String>,
}

/// The `items` of a titled multi-select.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TitledEnumItems {
    /// The choices.
    pub any_of: Vec<EnumOption>,
}

/// Several choices among plain values (2025-11-25 and later).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UntitledMultiSelectEnumSchema {
    /// Always `"array"`.
    #[serde(rename = "type")]
    pub r#type: ArrayType,
    /// The field's label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Help text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The least number of choices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_items: Option<u64>,
    /// The greatest number of choices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_items: Option<u64>,
    /// The allowed values.
    pub items: UntitledEnumItems,
    /// The initial choices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Vec<String>>,
}

/// Several choices among titled values (2025-11-25 and later).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TitledMultiSelectEnumSchema {
    /// Always `"array"`.
    #[serde(rename = "type")]
    pub r#type: ArrayType,
    /// The field's label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Help text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The least number of choices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_items: Option<u64>,
    /// The greatest number of choices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_items: Option<u64>,
    /// The choices.
    pub items: TitledEnumItems,
    /// The initial choices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> PrimitiveSchemaDefinition {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn fields_are_told_apart_by_their_members() {
        use PrimitiveSchemaDefinition as P;
        assert!(matches!(parse(json!({"type": "string"})), P::String(_)));
        assert!(matches!(parse(json!({"type": "string", "enum": ["a"]})), P::UntitledSingleSelect(_)));
        assert!(matches!(
            parse(json!({"type": "string", "enum": ["a"], "enumNames": ["A"]})),
            P::LegacyTitledEnum(_)
        ));
        assert!(matches!(
            parse(json!({"type": "string", "oneOf": [{"const": "a", "title": "A"}]})),
            P::TitledSingleSelect(_)
        ));
        assert!(matches!(
            parse(json!({"type": "integer"})),
            P::Number(NumberSchema { r#type: NumberType::Integer, .. })
        ));
        assert!(matches!(parse(json!({"type": "boolean"})), P::Boolean(_)));
        assert!(matches!(
            parse(json!({"type": "array", "items": {"type": "string", "enum": ["a"]}})),
            P::UntitledMultiSelect(_)
        ));
        assert!(matches!(
            parse(json!({"type": "array", "items": {"anyOf": [{"const": "a", "title": "A"}]}})),
            P::TitledMultiSelect(_)
        ));
        assert!(serde_json::from_value::<PrimitiveSchemaDefinition>(json!({"type": "object"})).is_err());
    }

    #[test]
    fn a_schema_reads_back_from_its_object() {
        let schema = ElicitationSchema::new()
            .required_property("age", PrimitiveSchemaDefinition::integer())
            .property("color", PrimitiveSchemaDefinition::single_select(["red", "green"]));
        let object = JsonObject::from(schema.clone());
        assert_eq!(object["properties"]["color"]["enum"], json!(["red", "green"]));
        assert_eq!(ElicitationSchema::from_object(&object).unwrap(), schema);
    }
}
