//! Checksummed JSON documents (superblock, disk labels).
//!
//! A document is a JSON object holding `magic`, `format_version`, the body's own fields,
//! and `checksum`: the BLAKE3 hash (hex) of the canonical compact form of every other
//! field (keys sorted). Readers check magic, then version, then checksum.

use super::{FormatError, FormatErrorKind};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

fn canonical_hash(fields: &Map<String, Value>) -> String {
    // serde_json's Map keeps keys sorted (no preserve_order feature), so this is canonical.
    let text = serde_json::to_string(fields).expect("a JSON map always serializes");
    blake3::hash(text.as_bytes()).to_hex().to_string()
}

/// Serializes `body` as a checksummed document of kind `magic`.
pub fn seal<T: Serialize>(magic: &str, version: u32, body: &T) -> Vec<u8> {
    let mut fields = match serde_json::to_value(body).expect("bodies serialize to JSON") {
        Value::Object(map) => map,
        _ => panic!("document bodies are JSON objects"),
    };
    fields.insert("magic".into(), Value::from(magic));
    fields.insert("format_version".into(), Value::from(version));
    fields.remove("checksum");
    let checksum = canonical_hash(&fields);
    fields.insert("checksum".into(), Value::from(checksum));
    let mut text = serde_json::to_vec_pretty(&Value::Object(fields)).expect("JSON serializes");
    text.push(b'\n');
    text
}

/// Parses and verifies a document of kind `magic` written by versions up to `newest`.
/// Returns the body and the version it was written with.
pub fn open<T: DeserializeOwned>(
    object: &str,
    bytes: &[u8],
    magic: &str,
    newest: u32,
) -> Result<(T, u32), FormatError> {
    let err = |kind| FormatError::new(object, 0, kind);
    let body_err = |why: String| err(FormatErrorKind::Body(why));
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        FormatError::new(
            object,
            e.line() as u64,
            FormatErrorKind::Body(format!("not JSON: {e}")),
        )
    })?;
    let Value::Object(mut fields) = value else {
        return Err(body_err("not a JSON object".into()));
    };
    let found_magic = fields.get("magic").and_then(Value::as_str).unwrap_or("");
    if found_magic != magic {
        return Err(body_err(format!(
            "magic {found_magic:?}, expected {magic:?}"
        )));
    }
    let version = fields
        .get("format_version")
        .and_then(Value::as_u64)
        .ok_or_else(|| body_err("format_version missing".into()))?;
    if version == 0 || version > u64::from(newest) {
        return Err(err(FormatErrorKind::UnknownVersion {
            found: u16::try_from(version).unwrap_or(u16::MAX),
            newest_known: u16::try_from(newest).unwrap_or(u16::MAX),
        }));
    }
    let stored = match fields.remove("checksum") {
        Some(Value::String(s)) => s,
        _ => return Err(body_err("checksum missing".into())),
    };
    let computed = canonical_hash(&fields);
    if stored != computed {
        return Err(body_err(format!(
            "checksum mismatch (stored {stored}, computed {computed})"
        )));
    }
    fields.remove("magic");
    fields.remove("format_version");
    let body = serde_json::from_value(Value::Object(fields))
        .map_err(|e| body_err(format!("unexpected content: {e}")))?;
    Ok((body, version as u32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Doc {
        name: String,
        count: u32,
    }

    #[test]
    fn round_trip_and_tamper_detection() {
        let doc = Doc {
            name: "x".into(),
            count: 3,
        };
        let bytes = seal("test-doc", 1, &doc);
        let (back, version): (Doc, u32) = open("t", &bytes, "test-doc", 1).unwrap();
        assert_eq!((back, version), (doc, 1));
        let tampered = String::from_utf8(bytes.clone())
            .unwrap()
            .replace("\"count\": 3", "\"count\": 4");
        assert!(open::<Doc>("t", tampered.as_bytes(), "test-doc", 1).is_err());
        assert!(open::<Doc>("t", &bytes, "other-doc", 1).is_err());
        assert!(open::<Doc>("t", &bytes[..10], "test-doc", 1).is_err());
    }
}
