//! The wire format of a queued job: one stream field, [`JOB_FIELD`], holding the JSON of an
//! [`Envelope`] around the payload. The envelope lets a consumer recognise (and dead-letter)
//! messages of another kind or a newer schema before it trusts the payload.

use serde::{Deserialize, Serialize};

use super::Job;

/// Name of the stream field that carries the envelope JSON.
pub const JOB_FIELD: &str = "job";

/// A job as it travels: kind and schema version, enqueue time and the payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<P> {
    pub kind: String,
    pub version: u32,
    pub enqueued_at_ms: u64,
    pub payload: P,
}

/// Why a message could not be turned into a job. Its text is the dead-letter reason.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("message has no `{JOB_FIELD}` field (fields: {fields})")]
    MissingJobField { fields: String },
    #[error("`{JOB_FIELD}` field is not a job envelope: {0}")]
    NotAnEnvelope(serde_json::Error),
    #[error("job kind `{found}` where `{expected}` was expected")]
    WrongKind {
        found: String,
        expected: &'static str,
    },
    #[error("`{kind}` job version {found} is newer than this consumer reads ({supported})")]
    TooNew {
        kind: &'static str,
        found: u32,
        supported: u32,
    },
    #[error("`{kind}` v{version} payload does not decode: {source}")]
    BadPayload {
        kind: &'static str,
        version: u32,
        source: serde_json::Error,
    },
}

impl<J: Job> Envelope<J> {
    /// Decodes a queue message's fields as a consumer does before it trusts the job: finds
    /// [`JOB_FIELD`], checks kind and version, then the payload. Every malformation is an
    /// error (its text is the dead-letter reason), never a panic.
    pub fn from_fields(fields: &[(Vec<u8>, Vec<u8>)]) -> Result<Self, DecodeError> {
        decode(fields)
    }
}

/// [`Envelope`] borrowing its parts, for encoding without copies.
#[derive(Serialize)]
struct EnvelopeRef<'a, P> {
    kind: &'a str,
    version: u32,
    enqueued_at_ms: u64,
    payload: &'a P,
}

pub(crate) fn encode<J: Job>(job: &J, enqueued_at_ms: u64) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(&EnvelopeRef {
        kind: J::KIND,
        version: J::VERSION,
        enqueued_at_ms,
        payload: job,
    })
}

/// Finds and decodes the envelope among a message's fields.
pub(crate) fn decode<J: Job>(fields: &[(Vec<u8>, Vec<u8>)]) -> Result<Envelope<J>, DecodeError> {
    let Some((_, raw)) = fields
        .iter()
        .find(|(name, _)| name.as_slice() == JOB_FIELD.as_bytes())
    else {
        let names: Vec<String> = fields
            .iter()
            .map(|(name, _)| String::from_utf8_lossy(name).into_owned())
            .collect();
        return Err(DecodeError::MissingJobField {
            fields: if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            },
        });
    };
    // Two steps, so that a message of another kind or version is reported as such rather than
    // as whatever payload field it happens to lack.
    let envelope: Envelope<serde_json::Value> =
        serde_json::from_slice(raw).map_err(DecodeError::NotAnEnvelope)?;
    if envelope.kind != J::KIND {
        return Err(DecodeError::WrongKind {
            found: envelope.kind,
            expected: J::KIND,
        });
    }
    if envelope.version > J::VERSION {
        return Err(DecodeError::TooNew {
            kind: J::KIND,
            found: envelope.version,
            supported: J::VERSION,
        });
    }
    let payload =
        serde_json::from_value(envelope.payload).map_err(|source| DecodeError::BadPayload {
            kind: J::KIND,
            version: envelope.version,
            source,
        })?;
    Ok(Envelope {
        kind: envelope.kind,
        version: envelope.version,
        enqueued_at_ms: envelope.enqueued_at_ms,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Check {
        account: String,
        height: u64,
    }

    impl Job for Check {
        const KIND: &'static str = "check";
        const VERSION: u32 = 2;
    }

    fn fields(json: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
        vec![(JOB_FIELD.as_bytes().to_vec(), json.as_bytes().to_vec())]
    }

    #[test]
    fn round_trip() {
        let job = Check {
            account: "osmo1abc".into(),
            height: 7,
        };
        let raw = encode(&job, 1234).unwrap();
        let decoded = decode::<Check>(&[(JOB_FIELD.into(), raw)]).unwrap();
        assert_eq!(decoded.payload, job);
        assert_eq!(decoded.kind, "check");
        assert_eq!(decoded.version, 2);
        assert_eq!(decoded.enqueued_at_ms, 1234);
    }

    #[test]
    fn every_malformation_has_a_reason() {
        let missing = decode::<Check>(&[(b"other".to_vec(), b"x".to_vec())]).unwrap_err();
        assert_eq!(
            missing.to_string(),
            "message has no `job` field (fields: other)"
        );

        let garbage = decode::<Check>(&fields("{not json")).unwrap_err();
        assert!(
            matches!(garbage, DecodeError::NotAnEnvelope(_)),
            "{garbage}"
        );

        let no_kind = decode::<Check>(&fields(r#"{"version":1,"enqueued_at_ms":1,"payload":{}}"#))
            .unwrap_err();
        assert!(
            no_kind.to_string().contains("missing field `kind`"),
            "{no_kind}"
        );

        let wrong_kind = decode::<Check>(&fields(
            r#"{"kind":"swap","version":1,"enqueued_at_ms":1,"payload":{}}"#,
        ))
        .unwrap_err();
        assert_eq!(
            wrong_kind.to_string(),
            "job kind `swap` where `check` was expected"
        );

        let too_new = decode::<Check>(&fields(
            r#"{"kind":"check","version":3,"enqueued_at_ms":1,"payload":{}}"#,
        ))
        .unwrap_err();
        assert!(matches!(too_new, DecodeError::TooNew { found: 3, .. }));

        let bad_payload = decode::<Check>(&fields(
            r#"{"kind":"check","version":1,"enqueued_at_ms":1,"payload":{"account":"a"}}"#,
        ))
        .unwrap_err();
        assert!(
            bad_payload.to_string().contains("missing field `height`"),
            "{bad_payload}"
        );
    }
}
