//! The vocabulary in which the request schemas are written.
//!
//! A schema says only what the walker needs to step over a body safely: the wire type of
//! every field and the versions in which it is present. Field names are there for error
//! messages and for readers comparing a schema with Kafka's protocol documentation.
//! Everything is `const` data, so a lookup costs nothing and nothing is built at startup.

use std::ops::RangeInclusive;

/// An inclusive range of versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versions {
    pub min: i16,
    pub max: i16,
}

impl Versions {
    pub const ALL: Versions = Versions {
        min: 0,
        max: i16::MAX,
    };

    pub const fn new(range: RangeInclusive<i16>) -> Versions {
        Versions {
            min: *range.start(),
            max: *range.end(),
        }
    }

    pub const fn contains(self, version: i16) -> bool {
        self.min <= version && version <= self.max
    }
}

/// The wire type of a field.
///
/// Nullability follows what kafka-protocol's types accept (an `Option` there), which is
/// at least what Kafka allows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Type {
    Int8,
    Int16,
    UInt16,
    Int32,
    Int64,
    Float64,
    /// One byte; Kafka reads any non-zero byte as true.
    Bool,
    Uuid,
    /// UTF-8 text: an int16 length, or in flexible versions an unsigned varint of length + 1.
    String {
        nullable: bool,
    },
    /// Opaque bytes: an int32 length, or in flexible versions an unsigned varint of length + 1.
    Bytes {
        nullable: bool,
    },
    /// A record batch set, carried as nullable bytes.
    Records,
    /// An int32 count, or in flexible versions an unsigned varint of count + 1, then the
    /// elements.
    Array {
        element: &'static Type,
        nullable: bool,
    },
    /// The fields in order, then in flexible versions the tagged-field section. A nullable
    /// struct is preceded by an int8: -1 for null, 1 for present.
    Struct {
        fields: &'static [Field],
        nullable: bool,
    },
}

pub const INT8: Type = Type::Int8;
pub const INT16: Type = Type::Int16;
pub const UINT16: Type = Type::UInt16;
pub const INT32: Type = Type::Int32;
pub const INT64: Type = Type::Int64;
pub const FLOAT64: Type = Type::Float64;
pub const BOOL: Type = Type::Bool;
pub const UUID: Type = Type::Uuid;
pub const STRING: Type = Type::String { nullable: false };
pub const BYTES: Type = Type::Bytes { nullable: false };
pub const RECORDS: Type = Type::Records;

/// An array of `element`, which is a primitive type or a [`structure`].
pub const fn array(element: &'static Type) -> Type {
    Type::Array {
        element,
        nullable: false,
    }
}

/// A struct made of `fields`.
pub const fn structure(fields: &'static [Field]) -> Type {
    Type::Struct {
        fields,
        nullable: false,
    }
}

/// The nullable form of a string, bytes, array or struct.
pub const fn nullable(ty: Type) -> Type {
    match ty {
        Type::String { .. } => Type::String { nullable: true },
        Type::Bytes { .. } => Type::Bytes { nullable: true },
        Type::Array { element, .. } => Type::Array {
            element,
            nullable: true,
        },
        Type::Struct { fields, .. } => Type::Struct {
            fields,
            nullable: true,
        },
        _ => panic!("only strings, bytes, arrays and structs can be nullable"),
    }
}

/// One field of a struct or message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Field {
    pub name: &'static str,
    pub ty: Type,
    /// The versions in which the field is on the wire.
    pub versions: Versions,
    /// Set for a tagged field: it lives in the tagged-field section under this tag.
    pub tag: Option<u32>,
}

/// A field present in every version of its message; narrow it with the methods below.
pub const fn field(name: &'static str, ty: Type) -> Field {
    Field {
        name,
        ty,
        versions: Versions::ALL,
        tag: None,
    }
}

impl Field {
    pub const fn since(mut self, version: i16) -> Field {
        self.versions.min = version;
        self
    }

    pub const fn until(mut self, version: i16) -> Field {
        self.versions.max = version;
        self
    }

    pub const fn versions(self, range: RangeInclusive<i16>) -> Field {
        self.since(*range.start()).until(*range.end())
    }

    pub const fn tagged(mut self, tag: u32) -> Field {
        self.tag = Some(tag);
        self
    }

    /// Whether the field is among the ordinary (untagged) fields of `version`.
    pub const fn is_plain_in(&self, version: i16) -> bool {
        self.tag.is_none() && self.versions.contains(version)
    }
}

/// The body of one request API.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MessageSchema {
    /// The versions this schema describes.
    pub versions: Versions,
    /// The first flexible version, if any.
    pub flexible_since: Option<i16>,
    pub fields: &'static [Field],
}

/// A message with a flexible form from version `flexible_since` on.
pub const fn message(
    versions: RangeInclusive<i16>,
    flexible_since: i16,
    fields: &'static [Field],
) -> MessageSchema {
    MessageSchema {
        versions: Versions::new(versions),
        flexible_since: Some(flexible_since),
        fields,
    }
}

/// A message that never got a flexible version.
pub const fn rigid_message(
    versions: RangeInclusive<i16>,
    fields: &'static [Field],
) -> MessageSchema {
    MessageSchema {
        versions: Versions::new(versions),
        flexible_since: None,
        fields,
    }
}

impl MessageSchema {
    /// Whether `version` uses compact lengths and tagged-field sections.
    pub fn is_flexible(&self, version: i16) -> bool {
        self.flexible_since.is_some_and(|since| version >= since)
    }
}
