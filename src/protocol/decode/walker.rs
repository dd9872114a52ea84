//! Steps over a request body by its schema without building anything.
//!
//! Every length and count is checked against the bytes left in the body before it is
//! believed: an array of `n` elements must leave room for `n` of its smallest elements, a
//! string or bytes field for its length. So once a body has been walked, no count in it
//! is larger than the body itself, and a decoder that allocates by count is safe. The
//! walker allocates nothing on success and recurses only as deep as the schema is nested,
//! never as deep as the input asks.
//!
//! Where kafka-protocol is lax in ways that would let it read something other than what
//! was checked, the walker is strict instead: a known tagged field must fill exactly its
//! declared size (kafka-protocol reads the value by type and ignores the size), a
//! nullable struct's presence byte must be -1 or 1 (kafka-protocol takes 0 as null, Kafka
//! as present), varints must fit in 32 bits (kafka-protocol drops the excess), and tags
//! must ascend, as the protocol requires, so no tag can appear twice.

use std::fmt;

use super::schema::{Field, MessageSchema, Type};

/// Unknown tagged fields the walker lets through per request, beyond one per
/// [`BODY_BYTES_PER_UNKNOWN_TAG`] bytes of body.
///
/// kafka-protocol keeps unknown tagged fields in a `BTreeMap` per struct, and the first
/// entry of a map allocates a node of about 400 bytes for 2 bytes of wire: unchecked, a
/// body could become 200 times its size in map nodes. Legitimate clients send unknown tags
/// only when they are newer than these schemas, and then a few per request.
pub const FREE_UNKNOWN_TAGS: usize = 64;

/// See [`FREE_UNKNOWN_TAGS`]. One unknown tag per 32 body bytes bounds map nodes to about
/// 13 bytes per body byte, while leaving room for a new tag in every partition of a
/// Fetch or Produce request.
pub const BODY_BYTES_PER_UNKNOWN_TAG: usize = 32;

/// Why a body does not match its schema, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkError {
    /// Offset in the body of the item that is wrong.
    pub offset: usize,
    /// The innermost field being read.
    pub field: &'static str,
    pub problem: Problem,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    Truncated {
        needed: u64,
        left: usize,
    },
    NegativeLength(i64),
    UnexpectedNull,
    TooManyElements {
        count: u64,
        min_size: usize,
        left: usize,
    },
    VarintOverflow,
    InvalidUtf8,
    BadNullMarker(i8),
    TagOutOfOrder {
        tag: u32,
        previous: u32,
    },
    TagTooLarge(u32),
    TagNotInVersion {
        tag: u32,
    },
    TaggedSizeMismatch {
        declared: usize,
        used: usize,
    },
    TooManyUnknownTags {
        limit: usize,
    },
}

impl fmt::Display for WalkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` at byte {}: {}",
            self.field, self.offset, self.problem
        )
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Truncated { needed, left } => {
                write!(f, "needs {needed} bytes but {left} are left")
            }
            Problem::NegativeLength(len) => write!(f, "negative length {len}"),
            Problem::UnexpectedNull => write!(f, "null where a value is required"),
            Problem::TooManyElements {
                count,
                min_size,
                left,
            } => write!(
                f,
                "{count} elements of at least {min_size} bytes do not fit in the {left} bytes left"
            ),
            Problem::VarintOverflow => write!(f, "unsigned varint does not fit in 32 bits"),
            Problem::InvalidUtf8 => write!(f, "string is not valid UTF-8"),
            Problem::BadNullMarker(marker) => {
                write!(f, "struct presence byte {marker} is neither -1 nor 1")
            }
            Problem::TagOutOfOrder { tag, previous } => {
                write!(f, "tag {tag} follows tag {previous}; tags must ascend")
            }
            Problem::TagTooLarge(tag) => write!(f, "tag {tag} does not fit in an int32"),
            Problem::TagNotInVersion { tag } => write!(f, "tag {tag} is not valid in this version"),
            Problem::TaggedSizeMismatch { declared, used } => write!(
                f,
                "tagged field declares {declared} bytes but its value takes {used}"
            ),
            Problem::TooManyUnknownTags { limit } => {
                write!(
                    f,
                    "more than {limit} unknown tagged fields for a body of this size"
                )
            }
        }
    }
}

type Walked = Result<(), WalkError>;

/// Checks that `body` starts with one `schema` message of `version`, and returns how many
/// bytes it takes. Bytes after it are not an error: brokers ignore them, and real clients
/// send them (librdkafka 2.12 ends its Metadata v13 requests with three zero bytes), so a
/// proxy that refused them would refuse clients Kafka serves.
pub fn walk(schema: &MessageSchema, version: i16, body: &[u8]) -> Result<usize, WalkError> {
    let mut walker = Walker {
        body,
        pos: 0,
        end: body.len(),
        version,
        flexible: schema.is_flexible(version),
        unknown_tags_left: FREE_UNKNOWN_TAGS + body.len() / BODY_BYTES_PER_UNKNOWN_TAG,
    };
    walker.fields(schema.fields, "body")?;
    Ok(walker.pos)
}

/// The smallest encoding of `ty` in `version`: null where allowed, otherwise zeros,
/// empty strings, empty arrays and no tagged fields.
pub fn min_size(ty: &Type, version: i16, flexible: bool) -> usize {
    let length_prefix = |rigid_width| if flexible { 1 } else { rigid_width };
    match *ty {
        Type::Int8 | Type::Bool => 1,
        Type::Int16 | Type::UInt16 => 2,
        Type::Int32 => 4,
        Type::Int64 | Type::Float64 => 8,
        Type::Uuid => 16,
        Type::String { .. } => length_prefix(2),
        Type::Bytes { .. } | Type::Records | Type::Array { .. } => length_prefix(4),
        Type::Struct { nullable: true, .. } => 1,
        Type::Struct { fields, .. } => {
            let plain: usize = fields
                .iter()
                .filter(|f| f.is_plain_in(version))
                .map(|f| min_size(&f.ty, version, flexible))
                .sum();
            plain + usize::from(flexible)
        }
    }
}

struct Walker<'a> {
    body: &'a [u8],
    pos: usize,
    /// Where the current value must end: the body's end, or a tagged field's.
    end: usize,
    version: i16,
    flexible: bool,
    unknown_tags_left: usize,
}

/// How a length or count is written when the version is not flexible.
#[derive(Clone, Copy)]
enum RigidWidth {
    Int16,
    Int32,
}

impl Walker<'_> {
    fn left(&self) -> usize {
        self.end - self.pos
    }

    fn error(&self, field: &'static str, problem: Problem) -> WalkError {
        WalkError {
            offset: self.pos,
            field,
            problem,
        }
    }

    fn take(&mut self, field: &'static str, n: usize) -> Result<&[u8], WalkError> {
        if n > self.left() {
            return Err(self.error(
                field,
                Problem::Truncated {
                    needed: n as u64,
                    left: self.left(),
                },
            ));
        }
        let start = self.pos;
        self.pos += n;
        Ok(&self.body[start..self.pos])
    }

    fn fixed<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], WalkError> {
        let bytes = self.take(field, N)?;
        Ok(bytes.try_into().expect("take returns exactly N bytes"))
    }

    fn unsigned_varint(&mut self, field: &'static str) -> Result<u32, WalkError> {
        let start = self.pos;
        let mut value = 0u32;
        for shift in [0, 7, 14, 21, 28] {
            let [byte] = self.fixed::<1>(field)?;
            if shift == 28 && byte > 0x0f {
                self.pos = start;
                return Err(self.error(field, Problem::VarintOverflow));
            }
            value |= u32::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
        }
        Ok(value)
    }

    /// Reads a length or count; `None` is null.
    fn length(
        &mut self,
        field: &'static str,
        nullable: bool,
        rigid: RigidWidth,
    ) -> Result<Option<usize>, WalkError> {
        let start = self.pos;
        let raw = if self.flexible {
            i64::from(self.unsigned_varint(field)?) - 1
        } else {
            match rigid {
                RigidWidth::Int16 => i64::from(i16::from_be_bytes(self.fixed(field)?)),
                RigidWidth::Int32 => i64::from(i32::from_be_bytes(self.fixed(field)?)),
            }
        };
        let problem = match raw {
            0.. => return Ok(Some(raw as usize)),
            -1 if nullable => return Ok(None),
            -1 => Problem::UnexpectedNull,
            _ => Problem::NegativeLength(raw),
        };
        self.pos = start;
        Err(self.error(field, problem))
    }

    fn fields(&mut self, fields: &'static [Field], owner: &'static str) -> Walked {
        let version = self.version;
        for field in fields.iter().filter(|f| f.is_plain_in(version)) {
            self.value(field.name, &field.ty)?;
        }
        if self.flexible {
            self.tagged_section(fields, owner)?;
        }
        Ok(())
    }

    fn value(&mut self, field: &'static str, ty: &'static Type) -> Walked {
        match *ty {
            Type::Int8 | Type::Bool => self.skip(field, 1),
            Type::Int16 | Type::UInt16 => self.skip(field, 2),
            Type::Int32 => self.skip(field, 4),
            Type::Int64 | Type::Float64 => self.skip(field, 8),
            Type::Uuid => self.skip(field, 16),
            Type::String { nullable } => self.string(field, nullable),
            Type::Bytes { nullable } => self.bytes(field, nullable),
            Type::Records => self.bytes(field, true),
            Type::Array { element, nullable } => self.array(field, element, nullable),
            Type::Struct { fields, nullable } => self.structure(field, fields, nullable),
        }
    }

    fn skip(&mut self, field: &'static str, n: usize) -> Walked {
        self.take(field, n).map(drop)
    }

    fn string(&mut self, field: &'static str, nullable: bool) -> Walked {
        let Some(len) = self.length(field, nullable, RigidWidth::Int16)? else {
            return Ok(());
        };
        let start = self.pos;
        let text = self.take(field, len)?;
        if std::str::from_utf8(text).is_err() {
            self.pos = start;
            return Err(self.error(field, Problem::InvalidUtf8));
        }
        Ok(())
    }

    fn bytes(&mut self, field: &'static str, nullable: bool) -> Walked {
        match self.length(field, nullable, RigidWidth::Int32)? {
            Some(len) => self.skip(field, len),
            None => Ok(()),
        }
    }

    fn array(&mut self, field: &'static str, element: &'static Type, nullable: bool) -> Walked {
        let start = self.pos;
        let Some(count) = self.length(field, nullable, RigidWidth::Int32)? else {
            return Ok(());
        };
        // Even an element that took no bytes would make the decoder reserve room for it.
        let min_size = min_size(element, self.version, self.flexible).max(1);
        if (count as u64) * (min_size as u64) > self.left() as u64 {
            let problem = Problem::TooManyElements {
                count: count as u64,
                min_size,
                left: self.left(),
            };
            self.pos = start;
            return Err(self.error(field, problem));
        }
        for _ in 0..count {
            self.value(field, element)?;
        }
        Ok(())
    }

    fn structure(
        &mut self,
        field: &'static str,
        fields: &'static [Field],
        nullable: bool,
    ) -> Walked {
        if nullable {
            match i8::from_be_bytes(self.fixed(field)?) {
                -1 => return Ok(()),
                1 => {}
                marker => {
                    self.pos -= 1;
                    return Err(self.error(field, Problem::BadNullMarker(marker)));
                }
            }
        }
        self.fields(fields, field)
    }

    /// The tagged fields after a flexible struct: a count, then tag, size and value each.
    fn tagged_section(&mut self, fields: &'static [Field], owner: &'static str) -> Walked {
        let start = self.pos;
        let count = self.unsigned_varint(owner)?;
        // A tag and a size take at least a byte each.
        if u64::from(count) * 2 > self.left() as u64 {
            let problem = Problem::TooManyElements {
                count: count.into(),
                min_size: 2,
                left: self.left(),
            };
            self.pos = start;
            return Err(self.error(owner, problem));
        }
        let mut previous = None;
        for _ in 0..count {
            let tag_start = self.pos;
            let tag = self.unsigned_varint(owner)?;
            if tag > i32::MAX as u32 {
                self.pos = tag_start;
                return Err(self.error(owner, Problem::TagTooLarge(tag)));
            }
            if let Some(previous) = previous.filter(|&previous| previous >= tag) {
                self.pos = tag_start;
                return Err(self.error(owner, Problem::TagOutOfOrder { tag, previous }));
            }
            previous = Some(tag);
            let size = self.unsigned_varint(owner)? as usize;
            match fields.iter().find(|f| f.tag == Some(tag)) {
                Some(known) if known.versions.contains(self.version) => {
                    self.tagged_value(known, size)?
                }
                Some(known) => {
                    self.pos = tag_start;
                    return Err(self.error(known.name, Problem::TagNotInVersion { tag }));
                }
                None => self.unknown_tagged_value(owner, tag_start, size)?,
            }
        }
        Ok(())
    }

    /// A known tagged field's value must fill exactly its declared size: the decoder
    /// reads the value by its type and ignores the size.
    fn tagged_value(&mut self, field: &'static Field, size: usize) -> Walked {
        if size > self.left() {
            return Err(self.error(
                field.name,
                Problem::Truncated {
                    needed: size as u64,
                    left: self.left(),
                },
            ));
        }
        let (start, outer_end) = (self.pos, self.end);
        self.end = start + size;
        self.value(field.name, &field.ty)?;
        if self.pos != self.end {
            let used = self.pos - start;
            self.pos = start;
            return Err(self.error(
                field.name,
                Problem::TaggedSizeMismatch {
                    declared: size,
                    used,
                },
            ));
        }
        self.end = outer_end;
        Ok(())
    }

    fn unknown_tagged_value(
        &mut self,
        owner: &'static str,
        tag_start: usize,
        size: usize,
    ) -> Walked {
        if self.unknown_tags_left == 0 {
            self.pos = tag_start;
            let limit = FREE_UNKNOWN_TAGS + self.body.len() / BODY_BYTES_PER_UNKNOWN_TAG;
            return Err(self.error(owner, Problem::TooManyUnknownTags { limit }));
        }
        self.unknown_tags_left -= 1;
        self.skip(owner, size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks `body`, which must be exactly one message.
    fn walk_all(schema: &MessageSchema, version: i16, body: &[u8]) -> Walked {
        let length = walk(schema, version, body)?;
        assert_eq!(length, body.len(), "the whole body is the message");
        Ok(())
    }
    use crate::protocol::decode::schema::*;

    const RIGID: MessageSchema = rigid_message(
        0..=0,
        &[field("name", nullable(STRING)), field("ids", array(&INT64))],
    );

    const FLEXIBLE: MessageSchema = message(
        0..=1,
        0,
        &[
            field("name", STRING),
            field("items", nullable(array(&structure(&[field("id", INT32)])))),
            field("cursor", nullable(structure(&[field("at", INT32)]))),
            field("hint", INT32).since(1).tagged(0),
            field("note", nullable(STRING)).tagged(1),
        ],
    );

    /// `name` null or "ab", `ids` of `count` with `id_bytes` of elements.
    fn rigid(name: i16, count: i32, id_bytes: usize) -> Vec<u8> {
        let mut body = name.to_be_bytes().to_vec();
        if name > 0 {
            body.extend(std::iter::repeat_n(b'a', name as usize));
        }
        body.extend(count.to_be_bytes());
        body.extend(std::iter::repeat_n(0, id_bytes));
        body
    }

    /// `name` "x", no items, no cursor, then the given tagged section.
    fn flexible(tagged: &[u8]) -> Vec<u8> {
        [&[2, b'x', 0, 0xff][..], tagged].concat()
    }

    fn problem(schema: &MessageSchema, version: i16, body: &[u8]) -> Problem {
        walk(schema, version, body).unwrap_err().problem
    }

    #[test]
    fn accepts_null_markers_where_nullable_only() {
        assert_eq!(walk_all(&RIGID, 0, &rigid(-1, 0, 0)), Ok(()));
        assert_eq!(walk_all(&RIGID, 0, &rigid(2, 2, 16)), Ok(()));
        assert_eq!(
            problem(&RIGID, 0, &rigid(2, -1, 0)),
            Problem::UnexpectedNull
        );
        // Compact: 0 is null.
        assert_eq!(walk_all(&FLEXIBLE, 0, &[2, b'x', 0, 0xff, 0]), Ok(()));
        assert_eq!(
            problem(&FLEXIBLE, 0, &[0, 0, 0xff, 0]),
            Problem::UnexpectedNull
        );
    }

    #[test]
    fn refuses_negative_lengths_other_than_null() {
        assert_eq!(
            problem(&RIGID, 0, &rigid(-2, 0, 0)),
            Problem::NegativeLength(-2)
        );
        let error = walk(&RIGID, 0, &rigid(-1, -7, 0)).unwrap_err();
        assert_eq!((error.offset, error.field), (2, "ids"));
        assert_eq!(error.problem, Problem::NegativeLength(-7));
    }

    #[test]
    fn refuses_truncation_anywhere() {
        let body = rigid(2, 2, 16);
        for cut in 0..body.len() {
            assert!(
                matches!(
                    problem(&RIGID, 0, &body[..cut]),
                    Problem::Truncated { .. } | Problem::TooManyElements { .. }
                ),
                "cut at {cut}"
            );
        }
        assert_eq!(
            problem(&RIGID, 0, &[0, 5, b'a', b'b', b'c']),
            Problem::Truncated { needed: 5, left: 3 }
        );
    }

    #[test]
    fn refuses_counts_the_bytes_left_cannot_hold() {
        let huge = walk(&RIGID, 0, &rigid(-1, i32::MAX, 8)).unwrap_err();
        assert_eq!(huge.offset, 2);
        assert_eq!(
            huge.problem,
            Problem::TooManyElements {
                count: i32::MAX as u64,
                min_size: 8,
                left: 8
            }
        );
        // Three int64s need 24 bytes, not just 3.
        assert!(matches!(
            problem(&RIGID, 0, &rigid(-1, 3, 20)),
            Problem::TooManyElements { count: 3, .. }
        ));
        let compact_huge = flexible_with_items(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(matches!(
            problem(&FLEXIBLE, 0, &compact_huge),
            Problem::TooManyElements { .. }
        ));
    }

    fn flexible_with_items(count: &[u8]) -> Vec<u8> {
        [&[2, b'x'][..], count, &[0, 0, 0, 0, 0, 0xff, 0]].concat()
    }

    #[test]
    fn bytes_after_the_message_are_not_part_of_it() {
        let mut body = rigid(2, 1, 8);
        let length = body.len();
        body.extend_from_slice(&[0, 0, 0]);
        assert_eq!(walk(&RIGID, 0, &body), Ok(length));
    }

    #[test]
    fn refuses_varints_beyond_32_bits() {
        for overlong in [
            &[0xff, 0xff, 0xff, 0xff, 0x1f][..],
            &[0x80, 0x80, 0x80, 0x80, 0x10],
            &[0x80, 0x80, 0x80, 0x80, 0x80, 0x00],
        ] {
            let body = [overlong, b"x"].concat();
            assert_eq!(problem(&FLEXIBLE, 0, &body), Problem::VarintOverflow);
        }
        // The largest 5-byte varint is fine as a number, just too long a string here.
        assert!(matches!(
            problem(&FLEXIBLE, 0, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
            Problem::Truncated { .. }
        ));
    }

    #[test]
    fn nullable_struct_presence_is_minus_one_or_one() {
        let with_cursor = |marker: u8| vec![2, b'x', 0, marker, 0, 0, 0, 9, 0, 0];
        assert_eq!(walk_all(&FLEXIBLE, 0, &with_cursor(1)), Ok(()));
        assert_eq!(
            problem(&FLEXIBLE, 0, &with_cursor(0)),
            Problem::BadNullMarker(0)
        );
        assert_eq!(
            problem(&FLEXIBLE, 0, &with_cursor(2)),
            Problem::BadNullMarker(2)
        );
    }

    #[test]
    fn refuses_invalid_utf8() {
        assert_eq!(
            problem(&RIGID, 0, &[0, 1, 0xff, 0, 0, 0, 0]),
            Problem::InvalidUtf8
        );
    }

    #[test]
    fn known_tagged_fields_must_fill_their_size_exactly() {
        assert_eq!(
            walk_all(&FLEXIBLE, 1, &flexible(&[1, 0, 4, 0, 0, 0, 1])),
            Ok(())
        );
        assert_eq!(walk_all(&FLEXIBLE, 1, &flexible(&[1, 1, 1, 0])), Ok(()));
        assert_eq!(
            problem(&FLEXIBLE, 1, &flexible(&[1, 0, 5, 0, 0, 0, 1, 0])),
            Problem::TaggedSizeMismatch {
                declared: 5,
                used: 4
            }
        );
        assert!(matches!(
            problem(&FLEXIBLE, 1, &flexible(&[1, 0, 3, 0, 0, 0])),
            Problem::Truncated { .. }
        ));
        assert!(matches!(
            problem(&FLEXIBLE, 1, &flexible(&[1, 0, 9, 0, 0, 0, 1])),
            Problem::Truncated { .. }
        ));
    }

    #[test]
    fn tags_must_ascend_fit_an_int32_and_exist_in_the_version() {
        assert_eq!(
            problem(&FLEXIBLE, 0, &flexible(&[1, 0, 4, 0, 0, 0, 1])),
            Problem::TagNotInVersion { tag: 0 }
        );
        assert_eq!(
            problem(&FLEXIBLE, 1, &flexible(&[2, 5, 0, 3, 0])),
            Problem::TagOutOfOrder {
                tag: 3,
                previous: 5
            }
        );
        assert_eq!(
            problem(&FLEXIBLE, 1, &flexible(&[2, 5, 0, 5, 0])),
            Problem::TagOutOfOrder {
                tag: 5,
                previous: 5
            }
        );
        assert_eq!(
            problem(
                &FLEXIBLE,
                1,
                &flexible(&[1, 0x80, 0x80, 0x80, 0x80, 0x08, 0])
            ),
            Problem::TagTooLarge(1 << 31)
        );
        assert!(matches!(
            problem(&FLEXIBLE, 1, &flexible(&[0x80, 0x80, 0x04])),
            Problem::TooManyElements { min_size: 2, .. }
        ));
    }

    #[test]
    fn unknown_tagged_fields_are_skipped_within_a_budget() {
        let section = |tags: u32| {
            let mut section = vec![tags as u8];
            for tag in 0..tags {
                section.extend([2 + tag as u8, 1, 0xaa]);
            }
            section
        };
        let within = flexible(&section(FREE_UNKNOWN_TAGS as u32 + 3));
        assert!(within.len() / BODY_BYTES_PER_UNKNOWN_TAG >= 3);
        assert_eq!(walk_all(&FLEXIBLE, 1, &within), Ok(()));
        let beyond = flexible(&section(FREE_UNKNOWN_TAGS as u32 + 10));
        assert!(matches!(
            problem(&FLEXIBLE, 1, &beyond),
            Problem::TooManyUnknownTags { .. }
        ));
    }

    #[test]
    fn elements_that_take_no_bytes_still_count_one_byte_each() {
        // A rigid struct whose only field is gone in this version.
        const EMPTY_ELEMENTS: MessageSchema = rigid_message(
            0..=1,
            &[field(
                "items",
                array(&structure(&[field("x", INT8).since(1)])),
            )],
        );
        assert_eq!(walk_all(&EMPTY_ELEMENTS, 0, &[0, 0, 0, 0]), Ok(()));
        assert!(matches!(
            problem(&EMPTY_ELEMENTS, 0, &[0x7f, 0xff, 0xff, 0xff]),
            Problem::TooManyElements { min_size: 1, .. }
        ));
    }
}
