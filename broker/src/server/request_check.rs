//! AWS's front-end checks of a request body, driven by the [validation table](super::shapes):
//! a member of the wrong JSON/CBOR type is a `SerializationException` worded as Kinesis words
//! it, and every constraint violation (null required members, lengths, patterns, ranges, enum
//! values) is reported in one `ValidationException`, in the table's order, before the
//! operation runs (so before any existence check).
//!
//! The body is read once into a borrowed value tree ([`Node`]); the typed decode of the
//! operation's request comes after and only sees bodies that passed.

use super::codec::WireFormat;
use super::error::ServerError;
use super::shapes::{self, Member, Rule, Type};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;
use std::sync::OnceLock;

/// AWS stops collecting violations after this many.
const MAX_VIOLATIONS: usize = 10;

/// Checks `body` against the input shape of `operation`; operations outside the table pass.
pub(crate) fn check(operation: &str, format: WireFormat, body: &[u8]) -> Result<(), ServerError> {
    let Some(members) = shapes::input(operation) else {
        return Ok(());
    };
    let owned;
    let root = match format {
        WireFormat::Json => decode_json(body)?,
        WireFormat::Cbor => {
            owned = decode_cbor(body)?;
            owned
        }
    };
    let fields: &[(Cow<'_, str>, Node<'_>)] = match &root {
        Node::Map(fields) => fields,
        Node::Null => &[],
        other => return Err(ServerError::Serialization(type_error(other, &STRUCTURE))),
    };
    check_types(fields, members).map_err(ServerError::Serialization)?;
    let mut violations = Vec::new();
    check_structure(fields, members, &Path::ROOT, &mut violations);
    if violations.is_empty() {
        return Ok(());
    }
    violations.truncate(MAX_VIOLATIONS);
    Err(ServerError::Validation(violations))
}

const STRUCTURE: Type = Type::Structure(&[]);

// ---------------------------------------------------------------------------------------------
// The value tree

/// A decoded request value; JSON strings are borrowed from the body where they need no
/// unescaping.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node<'a> {
    /// `null` (treated as an absent member).
    Null,
    /// A boolean.
    Bool(bool),
    /// An integral number.
    Int(i128),
    /// A number with a fraction.
    Float(f64),
    /// A string.
    Text(Cow<'a, str>),
    /// A CBOR byte string.
    Bytes(Cow<'a, [u8]>),
    /// A list.
    List(Vec<Node<'a>>),
    /// An object / map, in body order.
    Map(Vec<(Cow<'a, str>, Node<'a>)>),
}

/// A malformed body: AWS answers a bare `SerializationException` (no message).
fn malformed() -> ServerError {
    ServerError::Serialization(String::new())
}

fn decode_json(body: &[u8]) -> Result<Node<'_>, ServerError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Node::Null);
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let node = Node::deserialize(&mut deserializer).map_err(|_| malformed())?;
    deserializer.end().map_err(|_| malformed())?;
    Ok(node)
}

fn decode_cbor(body: &[u8]) -> Result<Node<'static>, ServerError> {
    if body.is_empty() {
        return Ok(Node::Null);
    }
    let value: ciborium::Value = ciborium::from_reader(body).map_err(|_| malformed())?;
    from_cbor(value)
}

fn from_cbor(value: ciborium::Value) -> Result<Node<'static>, ServerError> {
    use ciborium::Value;
    Ok(match value {
        Value::Null => Node::Null,
        Value::Bool(value) => Node::Bool(value),
        Value::Integer(value) => Node::Int(i128::from(value)),
        Value::Float(value) => Node::Float(value),
        Value::Text(text) => Node::Text(Cow::Owned(text)),
        Value::Bytes(bytes) => Node::Bytes(Cow::Owned(bytes)),
        // Timestamps are tag 1 around epoch milliseconds: the number is what is checked.
        Value::Tag(_, inner) => from_cbor(*inner)?,
        Value::Array(items) => {
            Node::List(items.into_iter().map(from_cbor).collect::<Result<_, _>>()?)
        }
        Value::Map(entries) => Node::Map(
            entries
                .into_iter()
                .map(|(key, value)| match key {
                    Value::Text(key) => Ok((Cow::Owned(key), from_cbor(value)?)),
                    _ => Err(malformed()),
                })
                .collect::<Result<_, _>>()?,
        ),
        _ => return Err(malformed()),
    })
}

impl<'de> Deserialize<'de> for Node<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON or CBOR value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Self::Value, E> {
        Ok(Node::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Self::Value, E> {
        Ok(Node::Int(i128::from(value)))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Self::Value, E> {
        Ok(Node::Int(i128::from(value)))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Self::Value, E> {
        Ok(Node::Float(value))
    }

    fn visit_borrowed_str<E>(self, value: &'de str) -> Result<Self::Value, E> {
        Ok(Node::Text(Cow::Borrowed(value)))
    }

    fn visit_str<E>(self, value: &str) -> Result<Self::Value, E> {
        Ok(Node::Text(Cow::Owned(value.to_owned())))
    }

    fn visit_string<E>(self, value: String) -> Result<Self::Value, E> {
        Ok(Node::Text(Cow::Owned(value)))
    }

    fn visit_borrowed_bytes<E>(self, value: &'de [u8]) -> Result<Self::Value, E> {
        Ok(Node::Bytes(Cow::Borrowed(value)))
    }

    fn visit_bytes<E>(self, value: &[u8]) -> Result<Self::Value, E> {
        Ok(Node::Bytes(Cow::Owned(value.to_vec())))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Node::Null)
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Node::Null)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, inner: D) -> Result<Self::Value, D::Error> {
        Node::deserialize(inner)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
        while let Some(key) = map.next_key_seed(KeySeed)? {
            entries.push((key, map.next_value()?));
        }
        Ok(Node::Map(entries))
    }
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a member name")
    }

    fn visit_borrowed_str<E>(self, value: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(value))
    }

    fn visit_str<E>(self, value: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(value))
    }
}

fn field<'n, 'a>(fields: &'n [(Cow<'a, str>, Node<'a>)], name: &str) -> Option<&'n Node<'a>> {
    // The last occurrence wins, as with serde's typed decode.
    fields
        .iter()
        .rev()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
        .filter(|value| !matches!(value, Node::Null))
}

// ---------------------------------------------------------------------------------------------
// Types: SerializationException

/// The Java class AWS names for a JSON number.
fn number_class(node: &Node<'_>) -> &'static str {
    match node {
        Node::Float(value) if value.fract() != 0.0 => "java.lang.Double",
        Node::Float(value) => integral_class(*value as i128),
        Node::Int(value) => integral_class(*value),
        _ => "java.lang.Object",
    }
}

fn integral_class(value: i128) -> &'static str {
    if i16::try_from(value).is_ok() {
        "java.lang.Short"
    } else if i32::try_from(value).is_ok() {
        "java.lang.Integer"
    } else {
        "java.lang.Long"
    }
}

fn type_name(kind: &Type) -> &'static str {
    match kind {
        Type::String => "an String",
        Type::Integer => "an Integer",
        Type::Boolean => "an Boolean",
        Type::Blob => "a Blob",
        Type::Timestamp => "an Timestamp",
        Type::List(_) | Type::Map { .. } | Type::Structure(_) => "an Object",
    }
}

/// The message for `node` where a `kind` was expected.
fn type_error(node: &Node<'_>, kind: &Type) -> String {
    match (node, kind) {
        (Node::List(_), Type::List(_)) | (Node::Map(_), Type::Map { .. } | Type::Structure(_)) => {
            String::new()
        }
        (Node::List(_), _) => "Start of list found where not expected".to_owned(),
        (Node::Map(_), _) => "Start of structure or map found where not expected.".to_owned(),
        (_, Type::List(_)) => "Expected list or null".to_owned(),
        (_, Type::Map { .. }) => "Expected map or null".to_owned(),
        (_, Type::Structure(_)) => "Expected null".to_owned(),
        (Node::Bool(_), kind) => format!(
            "class java.lang.Boolean can not be converted to {}",
            type_name(kind)
        ),
        (Node::Int(_) | Node::Float(_), kind) => format!(
            "class {} can not be converted to {}",
            number_class(node),
            type_name(kind)
        ),
        (Node::Text(text), Type::Boolean) => format!(
            "'{}' can not be converted to an Boolean",
            text.to_uppercase()
        ),
        (Node::Text(_), kind) => format!(
            "class java.lang.String can not be converted to {}",
            type_name(kind)
        ),
        (Node::Bytes(_), kind) => format!(
            "class java.nio.HeapByteBuffer can not be converted to {}",
            type_name(kind)
        ),
        (Node::Null, _) => String::new(),
    }
}

/// Checks every member's type, in table order; the first mismatch is the answer.
fn check_types(fields: &[(Cow<'_, str>, Node<'_>)], members: &[Member]) -> Result<(), String> {
    for member in members {
        if let Some(value) = field(fields, member.name) {
            check_type(value, &member.kind)?;
        }
    }
    Ok(())
}

fn check_type(node: &Node<'_>, kind: &Type) -> Result<(), String> {
    let accepted = match (kind, node) {
        (_, Node::Null) => true,
        (Type::String, Node::Text(_)) => true,
        (Type::Integer, Node::Int(_) | Node::Float(_)) => true,
        (Type::Boolean, Node::Bool(_)) => true,
        // AWS takes a fractional number as a boolean (a quirk kinesalite records).
        (Type::Boolean, Node::Float(value)) => value.fract() != 0.0,
        (Type::Blob, Node::Bytes(_)) => true,
        (Type::Blob, Node::Text(text)) => {
            return match base64_problem(text) {
                Some(problem) => Err(format!(
                    "'{text}' can not be converted to a Blob: {problem}"
                )),
                None => Ok(()),
            };
        }
        // The typed decode words bad timestamps; only containers are refused here.
        (Type::Timestamp, Node::List(_) | Node::Map(_)) => false,
        (Type::Timestamp, _) => true,
        (Type::List(item), Node::List(items)) => {
            for value in items {
                check_type(value, &item.kind)?;
            }
            true
        }
        (Type::Map { value, .. }, Node::Map(entries)) => {
            for (_, entry) in entries {
                check_type(entry, &value.kind)?;
            }
            true
        }
        (Type::Structure(members), Node::Map(fields)) => {
            check_types(fields, members)?;
            true
        }
        _ => false,
    };
    if accepted {
        Ok(())
    } else {
        Err(type_error(node, kind))
    }
}

/// Why `text` is not canonical padded base64, in AWS's words.
fn base64_problem(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return Some(format!(
            "Base64 encoded length is expected a multiple of 4 bytes but found: {}",
            text.chars().count()
        ));
    }
    let is_alphabet = |b: u8| b.is_ascii_alphanumeric() || b == b'+' || b == b'/';
    for (index, &byte) in bytes.iter().enumerate() {
        let pad_then_data = byte == b'=' && bytes.get(index + 1).is_some_and(|&next| next != b'=');
        if pad_then_data || !(is_alphabet(byte) || byte == b'=') {
            let shown = text[index..].chars().next().unwrap_or('=');
            return Some(format!("Invalid Base64 character: '{shown}'"));
        }
    }
    let pads = bytes.iter().rev().take_while(|&&b| b == b'=').count();
    let last_data = bytes.len().checked_sub(pads + 1).map(|index| bytes[index]);
    let unused_bits_set = match (pads, last_data) {
        (0, _) => false,
        (1, Some(last)) => sextet(last) & 0b11 != 0,
        (2, Some(last)) => sextet(last) & 0b1111 != 0,
        _ => true,
    };
    unused_bits_set.then(|| "Invalid last non-pad Base64 character dectected".to_owned())
}

fn sextet(byte: u8) -> u8 {
    match byte {
        b'A'..=b'Z' => byte - b'A',
        b'a'..=b'z' => byte - b'a' + 26,
        b'0'..=b'9' => byte - b'0' + 52,
        b'+' => 62,
        _ => 63,
    }
}

/// The decoded length of checked base64 text.
fn base64_len(text: &str) -> usize {
    let pads = text.bytes().rev().take_while(|&b| b == b'=').count();
    (text.len() / 4 * 3).saturating_sub(pads)
}

// ---------------------------------------------------------------------------------------------
// Constraints: ValidationException

fn lower_first(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Where a member sits in the request; written out (`records.2.member.data`) only when a
/// violation names it, so valid requests allocate no paths.
#[derive(Debug, Clone, Copy)]
struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    segment: Segment<'a>,
}

#[derive(Debug, Clone, Copy)]
enum Segment<'a> {
    /// The request itself.
    Root,
    /// A member, by its wire name.
    Member(&'a str),
    /// The `index`-th (from 0) element of a list.
    Element(usize),
}

impl<'a> Path<'a> {
    const ROOT: Path<'static> = Path {
        parent: None,
        segment: Segment::Root,
    };

    fn child(&'a self, segment: Segment<'a>) -> Path<'a> {
        Path {
            parent: Some(self),
            segment,
        }
    }

    fn write(&self, out: &mut String) {
        if let Some(parent) = self.parent {
            parent.write(out);
        }
        match self.segment {
            Segment::Root => {}
            Segment::Member(name) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&lower_first(name));
            }
            Segment::Element(index) => {
                out.push_str(&format!(".{}.member", index + 1));
            }
        }
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        self.write(&mut out);
        formatter.write_str(&out)
    }
}

fn push(out: &mut Vec<String>, shown: Option<&str>, path: &Path<'_>, constraint: &str) {
    if out.len() >= MAX_VIOLATIONS {
        return;
    }
    out.push(match shown {
        Some(value) => {
            format!("Value '{value}' at '{path}' failed to satisfy constraint: {constraint}")
        }
        None => format!("Value at '{path}' failed to satisfy constraint: {constraint}"),
    });
}

fn check_structure(
    fields: &[(Cow<'_, str>, Node<'_>)],
    members: &[Member],
    parent: &Path<'_>,
    out: &mut Vec<String>,
) {
    for member in members {
        let path = parent.child(Segment::Member(member.name));
        check_member(member, field(fields, member.name), &path, out);
    }
}

fn check_member(member: &Member, value: Option<&Node<'_>>, path: &Path<'_>, out: &mut Vec<String>) {
    let Some(value) = value else {
        if member.required && out.len() < MAX_VIOLATIONS {
            out.push(format!(
                "Value null at '{path}' failed to satisfy constraint: Member must not be null"
            ));
        }
        return;
    };
    match (&member.kind, value) {
        (Type::String, Node::Text(text)) => {
            for rule in member.rules {
                if let Some(constraint) = string_violation(rule, text) {
                    push(out, Some(text), path, &constraint);
                }
            }
        }
        (Type::Integer, Node::Int(_) | Node::Float(_)) => {
            let number = integral(value);
            for rule in member.rules {
                if let Some(constraint) = number_violation(rule, number) {
                    push(out, Some(&number.to_string()), path, &constraint);
                }
            }
        }
        (Type::Blob, Node::Text(_) | Node::Bytes(_)) => {
            let length = match value {
                Node::Text(text) => base64_len(text),
                Node::Bytes(bytes) => bytes.len(),
                _ => 0,
            };
            for rule in member.rules {
                if let Some(constraint) = length_violation(rule, length) {
                    push(out, None, path, &constraint);
                }
            }
        }
        (Type::List(item), Node::List(items)) => check_list(member, item, items, path, out),
        (Type::Map { key, value: entry }, Node::Map(entries)) => {
            check_map(member, key, entry, entries, path, out);
        }
        (Type::Structure(members), Node::Map(fields)) => {
            check_structure(fields, members, path, out)
        }
        _ => {}
    }
}

fn integral(node: &Node<'_>) -> i128 {
    match node {
        Node::Int(value) => *value,
        Node::Float(value) => value.floor() as i128,
        _ => 0,
    }
}

fn string_violation(rule: &Rule, text: &str) -> Option<String> {
    match rule {
        Rule::Pattern(pattern) => (!matches_pattern(pattern, text))
            .then(|| format!("Member must satisfy regular expression pattern: {pattern}")),
        Rule::MinLength(_) | Rule::MaxLength(_) => length_violation(rule, text.chars().count()),
        Rule::OneOf(allowed) => (!allowed.contains(&text)).then(|| {
            format!(
                "Member must satisfy enum value set: [{}]",
                allowed.join(", ")
            )
        }),
        Rule::Min(_) | Rule::Max(_) => None,
    }
}

fn length_violation(rule: &Rule, length: usize) -> Option<String> {
    match *rule {
        Rule::MinLength(min) if length < min => Some(format!(
            "Member must have length greater than or equal to {min}"
        )),
        Rule::MaxLength(max) if length > max => Some(format!(
            "Member must have length less than or equal to {max}"
        )),
        _ => None,
    }
}

fn number_violation(rule: &Rule, number: i128) -> Option<String> {
    match *rule {
        Rule::Min(min) if number < i128::from(min) => Some(format!(
            "Member must have value greater than or equal to {min}"
        )),
        Rule::Max(max) if number > i128::from(max) => Some(format!(
            "Member must have value less than or equal to {max}"
        )),
        _ => None,
    }
}

/// Whether a scalar list or map member breaks one of `member`'s rules.
fn breaks(member: &Member, node: &Node<'_>) -> bool {
    match node {
        Node::Text(text) => member
            .rules
            .iter()
            .any(|rule| string_violation(rule, text).is_some()),
        _ => false,
    }
}

/// A scalar member's rules as AWS lists them inside "must satisfy constraint: [...]".
fn rules_text(member: &Member) -> String {
    let mut parts = Vec::new();
    for rule in member.rules {
        if let Rule::MaxLength(max) = rule {
            parts.push(format!(
                "Member must have length less than or equal to {max}"
            ));
        }
    }
    for rule in member.rules {
        match rule {
            Rule::MinLength(min) => parts.push(format!(
                "Member must have length greater than or equal to {min}"
            )),
            Rule::Pattern(pattern) => parts.push(format!(
                "Member must satisfy regular expression pattern: {pattern}"
            )),
            Rule::OneOf(allowed) => parts.push(format!(
                "Member must satisfy enum value set: [{}]",
                allowed.join(", ")
            )),
            _ => {}
        }
    }
    format!("[{}]", parts.join(", "))
}

fn shown_scalar(node: &Node<'_>) -> String {
    match node {
        Node::Text(text) => text.to_string(),
        Node::Int(value) => value.to_string(),
        Node::Float(value) => value.to_string(),
        Node::Bool(value) => value.to_string(),
        _ => String::new(),
    }
}

fn check_list(
    member: &Member,
    item: &Member,
    items: &[Node<'_>],
    path: &Path<'_>,
    out: &mut Vec<String>,
) {
    let is_structure_list = matches!(item.kind, Type::Structure(_));
    let shown = || {
        (!is_structure_list).then(|| {
            let joined: Vec<String> = items.iter().map(shown_scalar).collect();
            format!("[{}]", joined.join(", "))
        })
    };
    for rule in member.rules {
        if let Some(constraint) = length_violation(rule, items.len()) {
            push(out, shown().as_deref(), path, &constraint);
        }
    }
    if let Type::Structure(members) = item.kind {
        for (index, value) in items.iter().enumerate() {
            if let Node::Map(fields) = value {
                let element = path.child(Segment::Element(index));
                check_structure(fields, members, &element, out);
            }
        }
        return;
    }
    if items.iter().any(|value| breaks(item, value)) {
        let constraint = format!("Member must satisfy constraint: {}", rules_text(item));
        push(out, shown().as_deref(), path, &constraint);
    }
}

fn check_map(
    member: &Member,
    key: &Member,
    value: &Member,
    entries: &[(Cow<'_, str>, Node<'_>)],
    path: &Path<'_>,
    out: &mut Vec<String>,
) {
    let shown = || {
        let pairs: Vec<String> = entries
            .iter()
            .map(|(name, entry)| format!("{name}={}", shown_scalar(entry)))
            .collect();
        format!("{{{}}}", pairs.join(", "))
    };
    for rule in member.rules {
        if let Some(constraint) = length_violation(rule, entries.len()) {
            push(out, Some(&shown()), path, &constraint);
        }
    }
    let bad_key = entries
        .iter()
        .any(|(name, _)| breaks(key, &Node::Text(Cow::Borrowed(name))));
    if bad_key {
        let constraint = format!("Map keys must satisfy constraint: {}", rules_text(key));
        push(out, Some(&shown()), path, &constraint);
    }
    if entries.iter().any(|(_, entry)| breaks(value, entry)) {
        let constraint = format!("Map value must satisfy constraint: {}", rules_text(value));
        push(out, Some(&shown()), path, &constraint);
    }
}

/// Whether all of `text` matches the model's `pattern` (compiled once).
fn matches_pattern(pattern: &str, text: &str) -> bool {
    static COMPILED: OnceLock<Vec<(&'static str, Option<regex_lite::Regex>)>> = OnceLock::new();
    let compiled = COMPILED.get_or_init(|| {
        shapes::PATTERNS
            .iter()
            .map(|pattern| {
                (
                    *pattern,
                    regex_lite::Regex::new(&format!("^(?:{pattern})$")).ok(),
                )
            })
            .collect()
    });
    match compiled.iter().find(|(known, _)| *known == pattern) {
        Some((_, Some(regex))) => regex.is_match(text),
        // A pattern outside the table, or one that does not compile (a unit test rules both
        // out): nothing to check against.
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_error(operation: &str, body: &str) -> Option<(String, String)> {
        let error = check(operation, WireFormat::Json, body.as_bytes()).err()?;
        Some((error.aws_type().to_owned(), error.message()))
    }

    #[test]
    fn every_pattern_compiles() {
        for pattern in shapes::PATTERNS {
            assert!(
                regex_lite::Regex::new(&format!("^(?:{pattern})$")).is_ok(),
                "{pattern}"
            );
        }
    }

    #[test]
    fn patterns_match_whole_values() {
        let cases: &[(&str, &str, bool)] = &[
            (shapes::NAME_PATTERN, "orders.v1-x_2", true),
            (shapes::NAME_PATTERN, "bad name", false),
            (shapes::NAME_PATTERN, "", false),
            (shapes::HASH_KEY_PATTERN, "0", true),
            (shapes::HASH_KEY_PATTERN, "01", false),
            (
                shapes::SEQUENCE_NUMBER_PATTERN,
                "49590338271490256608559692538361571095921575989136588898",
                true,
            ),
            (shapes::SEQUENCE_NUMBER_PATTERN, "x1", false),
            (
                shapes::STREAM_ARN_PATTERN,
                "arn:aws:kinesis:us-east-1:123456789012:stream/s",
                true,
            ),
            (
                shapes::STREAM_ARN_PATTERN,
                "arn:aws:kinesis:us-east-1:1234:stream/s",
                false,
            ),
            (
                shapes::CONSUMER_ARN_PATTERN,
                "arn:aws:kinesis:us-east-1:123456789012:stream/s/consumer/c:1700000000",
                true,
            ),
            (
                shapes::CONSUMER_ARN_PATTERN,
                "arn:aws:kinesis:us-east-1:123456789012:stream/s",
                false,
            ),
            (
                shapes::RESOURCE_ARN_PATTERN,
                "arn:aws:kinesis:eu-west-1:123456789012:stream/s",
                true,
            ),
            (shapes::STREAM_ID_PATTERN, "abcdefghij0123456789-abc", true),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(
                matches_pattern(pattern, text),
                *expected,
                "{pattern} {text}"
            );
        }
    }

    #[test]
    fn base64_problems_are_worded_as_aws() {
        let cases: &[(&str, Option<&str>)] = &[
            ("", None),
            ("aGk=", None),
            ("aGVsbG8A/w==", None),
            (
                "23456",
                Some("Base64 encoded length is expected a multiple of 4 bytes but found: 5"),
            ),
            ("=+/=", Some("Invalid Base64 character: '='")),
            ("ab%d", Some("Invalid Base64 character: '%'")),
            (
                "+/+=",
                Some("Invalid last non-pad Base64 character dectected"),
            ),
            (
                "aGl=",
                Some("Invalid last non-pad Base64 character dectected"),
            ),
            (
                "A===",
                Some("Invalid last non-pad Base64 character dectected"),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(base64_problem(text).as_deref(), *expected, "{text:?}");
        }
        assert_eq!(base64_len("aGVsbG8A/w=="), 7);
        assert_eq!(base64_len("aGk="), 2);
    }

    #[test]
    fn wrong_types_are_serialization_errors() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "CreateStream",
                r#"{"StreamName":"s","ShardCount":"23"}"#,
                "class java.lang.String can not be converted to an Integer",
            ),
            (
                "CreateStream",
                r#"{"StreamName":"s","ShardCount":true}"#,
                "class java.lang.Boolean can not be converted to an Integer",
            ),
            (
                "CreateStream",
                r#"{"StreamName":"s","ShardCount":[]}"#,
                "Start of list found where not expected",
            ),
            (
                "CreateStream",
                r#"{"StreamName":"s","ShardCount":{}}"#,
                "Start of structure or map found where not expected.",
            ),
            (
                "CreateStream",
                r#"{"StreamName":true}"#,
                "class java.lang.Boolean can not be converted to an String",
            ),
            (
                "CreateStream",
                r#"{"StreamName":23}"#,
                "class java.lang.Short can not be converted to an String",
            ),
            (
                "CreateStream",
                r#"{"StreamName":-2147483648}"#,
                "class java.lang.Integer can not be converted to an String",
            ),
            (
                "CreateStream",
                r#"{"StreamName":2147483648}"#,
                "class java.lang.Long can not be converted to an String",
            ),
            (
                "CreateStream",
                r#"{"StreamName":34.56}"#,
                "class java.lang.Double can not be converted to an String",
            ),
            (
                "CreateStream",
                r#"{"StreamName":"s","Tags":[]}"#,
                "Start of list found where not expected",
            ),
            (
                "CreateStream",
                r#"{"StreamName":"s","Tags":1}"#,
                "Expected map or null",
            ),
            (
                "CreateStream",
                r#"{"StreamName":"s","StreamModeDetails":"x"}"#,
                "Expected null",
            ),
            (
                "DeleteStream",
                r#"{"StreamName":"s","EnforceConsumerDeletion":23}"#,
                "class java.lang.Short can not be converted to an Boolean",
            ),
            (
                "DeleteStream",
                r#"{"StreamName":"s","EnforceConsumerDeletion":"maybe"}"#,
                "'MAYBE' can not be converted to an Boolean",
            ),
            (
                "PutRecord",
                r#"{"Data":true}"#,
                "class java.lang.Boolean can not be converted to a Blob",
            ),
            (
                "PutRecord",
                r#"{"Data":23}"#,
                "class java.lang.Short can not be converted to a Blob",
            ),
            (
                "PutRecord",
                r#"{"Data":"23456"}"#,
                "'23456' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: 5",
            ),
            ("PutRecords", r#"{"Records":true}"#, "Expected list or null"),
            (
                "PutRecords",
                r#"{"Records":{}}"#,
                "Start of structure or map found where not expected.",
            ),
            (
                "PutRecords",
                r#"{"Records":[{"Data":"a"}]}"#,
                "'a' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: 1",
            ),
            (
                "RemoveTagsFromStream",
                r#"{"TagKeys":[1]}"#,
                "class java.lang.Short can not be converted to an String",
            ),
            (
                "ListShards",
                r#"{"StreamCreationTimestamp":[]}"#,
                "Start of list found where not expected",
            ),
            (
                "ListStreams",
                "[]",
                "Start of list found where not expected",
            ),
            ("ListStreams", "12", "Expected null"),
        ];
        for (operation, body, message) in cases {
            assert_eq!(
                json_error(operation, body),
                Some(("SerializationException".to_owned(), (*message).to_owned())),
                "{operation} {body}"
            );
        }
    }

    #[test]
    fn malformed_bodies_are_bare_serialization_errors() {
        for body in ["{", "{\"StreamName\":}", "{} x", "nul"] {
            assert_eq!(
                json_error("ListStreams", body),
                Some(("SerializationException".to_owned(), String::new())),
                "{body}"
            );
        }
        assert!(check("ListStreams", WireFormat::Json, b"").is_ok());
        assert!(check("ListStreams", WireFormat::Json, b"{\"Limit\":null}").is_ok());
        assert!(check("NoSuchOperation", WireFormat::Json, b"[").is_ok());
    }

    #[test]
    fn violations_are_reported_together_in_aws_order() {
        let name129 = "a".repeat(129);
        let key257 = "k".repeat(257);
        let cases: Vec<(&str, String, String)> = vec![
            (
                "CreateStream",
                "{}".into(),
                "1 validation error detected: Value null at 'streamName' failed to satisfy constraint: Member must not be null".into(),
            ),
            (
                "CreateStream",
                r#"{"StreamName":"","ShardCount":0}"#.into(),
                "3 validation errors detected: Value '0' at 'shardCount' failed to satisfy constraint: Member must have value greater than or equal to 1; Value '' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; Value '' at 'streamName' failed to satisfy constraint: Member must have length greater than or equal to 1".into(),
            ),
            (
                "CreateStream",
                format!(r#"{{"StreamName":"{name129}","ShardCount":100000000000}}"#),
                format!("1 validation error detected: Value '{name129}' at 'streamName' failed to satisfy constraint: Member must have length less than or equal to 128"),
            ),
            (
                "PutRecord",
                "{}".into(),
                "2 validation errors detected: Value null at 'partitionKey' failed to satisfy constraint: Member must not be null; Value null at 'data' failed to satisfy constraint: Member must not be null".into(),
            ),
            (
                "PutRecord",
                r#"{"StreamName":"","PartitionKey":"","Data":"","ExplicitHashKey":"","SequenceNumberForOrdering":""}"#.into(),
                "5 validation errors detected: Value '' at 'sequenceNumberForOrdering' failed to satisfy constraint: Member must satisfy regular expression pattern: 0|([1-9]\\d{0,128}); Value '' at 'partitionKey' failed to satisfy constraint: Member must have length greater than or equal to 1; Value '' at 'explicitHashKey' failed to satisfy constraint: Member must satisfy regular expression pattern: 0|([1-9]\\d{0,38}); Value '' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; Value '' at 'streamName' failed to satisfy constraint: Member must have length greater than or equal to 1".into(),
            ),
            (
                "PutRecord",
                format!(r#"{{"StreamName":"s","PartitionKey":"{key257}","Data":""}}"#),
                format!("1 validation error detected: Value '{key257}' at 'partitionKey' failed to satisfy constraint: Member must have length less than or equal to 256"),
            ),
            (
                "GetShardIterator",
                r#"{"StreamName":"","ShardIteratorType":"","ShardId":"","StartingSequenceNumber":""}"#.into(),
                "6 validation errors detected: Value '' at 'shardId' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; Value '' at 'shardId' failed to satisfy constraint: Member must have length greater than or equal to 1; Value '' at 'shardIteratorType' failed to satisfy constraint: Member must satisfy enum value set: [AFTER_SEQUENCE_NUMBER, LATEST, AT_TIMESTAMP, AT_SEQUENCE_NUMBER, TRIM_HORIZON]; Value '' at 'startingSequenceNumber' failed to satisfy constraint: Member must satisfy regular expression pattern: 0|([1-9]\\d{0,128}); Value '' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; Value '' at 'streamName' failed to satisfy constraint: Member must have length greater than or equal to 1".into(),
            ),
            (
                "PutRecords",
                r#"{"Records":[{"PartitionKey":"a","Data":""},{"Data":"","ExplicitHashKey":"x"}],"StreamName":"s"}"#.into(),
                "2 validation errors detected: Value null at 'records.2.member.partitionKey' failed to satisfy constraint: Member must not be null; Value 'x' at 'records.2.member.explicitHashKey' failed to satisfy constraint: Member must satisfy regular expression pattern: 0|([1-9]\\d{0,38})".into(),
            ),
            (
                "PutRecords",
                r#"{"Records":[],"StreamName":"s"}"#.into(),
                "1 validation error detected: Value at 'records' failed to satisfy constraint: Member must have length greater than or equal to 1".into(),
            ),
            (
                "RemoveTagsFromStream",
                format!(r#"{{"StreamName":"s","TagKeys":["a","{name129}"]}}"#),
                format!("1 validation error detected: Value '[a, {name129}]' at 'tagKeys' failed to satisfy constraint: Member must satisfy constraint: [Member must have length less than or equal to 128, Member must have length greater than or equal to 1]"),
            ),
            (
                "AddTagsToStream",
                format!(r#"{{"StreamName":"s","Tags":{{"{name129}":"v"}}}}"#),
                format!("1 validation error detected: Value '{{{name129}=v}}' at 'tags' failed to satisfy constraint: Map keys must satisfy constraint: [Member must have length less than or equal to 128, Member must have length greater than or equal to 1]"),
            ),
            (
                "AddTagsToStream",
                r#"{"StreamName":"s","Tags":{}}"#.into(),
                "1 validation error detected: Value '{}' at 'tags' failed to satisfy constraint: Member must have length greater than or equal to 1".into(),
            ),
            (
                "EnableEnhancedMonitoring",
                r#"{"StreamName":"s","ShardLevelMetrics":["Latency"]}"#.into(),
                "1 validation error detected: Value '[Latency]' at 'shardLevelMetrics' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [IncomingBytes, IncomingRecords, OutgoingBytes, OutgoingRecords, WriteProvisionedThroughputExceeded, ReadProvisionedThroughputExceeded, IteratorAgeMilliseconds, ALL]]".into(),
            ),
            (
                "UpdateStreamMode",
                r#"{"StreamModeDetails":{}}"#.into(),
                "2 validation errors detected: Value null at 'streamARN' failed to satisfy constraint: Member must not be null; Value null at 'streamModeDetails.streamMode' failed to satisfy constraint: Member must not be null".into(),
            ),
            (
                "ListShards",
                r#"{"StreamName":"s","MaxResults":0,"ShardFilter":{"Type":"SOON"}}"#.into(),
                "2 validation errors detected: Value '0' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1; Value 'SOON' at 'shardFilter.type' failed to satisfy constraint: Member must satisfy enum value set: [AFTER_SHARD_ID, AT_TRIM_HORIZON, FROM_TRIM_HORIZON, AT_LATEST, AT_TIMESTAMP, FROM_TIMESTAMP]".into(),
            ),
            (
                "SubscribeToShard",
                r#"{"ConsumerARN":"arn:aws:kinesis:us-east-1:123456789012:stream/s","ShardId":"shardId-0","StartingPosition":{"Type":"LATEST"}}"#.into(),
                "1 validation error detected: Value 'arn:aws:kinesis:us-east-1:123456789012:stream/s' at 'consumerARN' failed to satisfy constraint: Member must satisfy regular expression pattern: ^(arn):aws.*:kinesis:.*:\\d{12}:.*stream\\/[a-zA-Z0-9_.-]+\\/consumer\\/[a-zA-Z0-9_.-]+:[0-9]+".into(),
            ),
        ];
        for (operation, body, message) in cases {
            assert_eq!(
                json_error(operation, &body),
                Some(("ValidationException".to_owned(), message)),
                "{operation} {body}"
            );
        }
    }

    #[test]
    fn at_most_ten_violations_are_listed() {
        let records: Vec<String> = (0..12).map(|_| "{}".to_owned()).collect();
        let body = format!(r#"{{"Records":[{}],"StreamName":"s"}}"#, records.join(","));
        let (kind, message) = json_error("PutRecords", &body).expect("invalid");
        assert_eq!(kind, "ValidationException");
        assert!(
            message.starts_with("10 validation errors detected: "),
            "{message}"
        );
        assert_eq!(message.matches("Member must not be null").count(), 10);
    }

    #[test]
    fn valid_requests_pass() {
        let cases: &[(&str, &str)] = &[
            (
                "CreateStream",
                r#"{"StreamName":"s","ShardCount":2,"Tags":{"k":""}}"#,
            ),
            (
                "PutRecord",
                r#"{"StreamName":"s","PartitionKey":"p","Data":"aGk=","SequenceNumberForOrdering":"0"}"#,
            ),
            (
                "PutRecords",
                r#"{"StreamName":"s","Records":[{"PartitionKey":"p","Data":""}]}"#,
            ),
            (
                "GetShardIterator",
                r#"{"StreamName":"s","ShardId":"shardId-000000000000","ShardIteratorType":"AT_TIMESTAMP","Timestamp":1.5}"#,
            ),
            ("DescribeLimits", "{}"),
            ("ListStreams", r#"{"Unknown":[1,2,{"x":null}]}"#),
        ];
        for (operation, body) in cases {
            assert_eq!(json_error(operation, body), None, "{operation} {body}");
        }
    }

    #[test]
    fn cbor_bodies_are_checked_alike() {
        use ciborium::Value;
        let encode = |value: Value| {
            let mut out = Vec::new();
            ciborium::into_writer(&value, &mut out).expect("encodes");
            out
        };
        let good = encode(Value::Map(vec![
            (Value::Text("StreamName".into()), Value::Text("s".into())),
            (Value::Text("PartitionKey".into()), Value::Text("p".into())),
            (Value::Text("Data".into()), Value::Bytes(vec![1, 2, 3])),
        ]));
        assert!(check("PutRecord", WireFormat::Cbor, &good).is_ok());
        let bad = encode(Value::Map(vec![
            (
                Value::Text("StreamName".into()),
                Value::Text("bad name".into()),
            ),
            (Value::Text("Data".into()), Value::Bytes(vec![])),
        ]));
        let error = check("PutRecord", WireFormat::Cbor, &bad).expect_err("invalid");
        assert_eq!(
            error.message(),
            "2 validation errors detected: Value null at 'partitionKey' failed to satisfy constraint: Member must not be null; Value 'bad name' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
        );
        let wrong = encode(Value::Map(vec![(
            Value::Text("ShardCount".into()),
            Value::Text("2".into()),
        )]));
        let error = check("CreateStream", WireFormat::Cbor, &wrong).expect_err("invalid");
        assert_eq!(error.aws_type(), "SerializationException");
    }
}
