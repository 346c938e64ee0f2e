//! The NATS log's format (SPEC.md §5.4), its one owner: subjects, the log
//! id, message ids, the bytes a message stores and the frame a reader makes
//! of it. Pinned by `tests/vectors/nats.json`, which the tests of this
//! module write and every other reader (the Python host's `nats.py`)
//! checks.
//!
//! * Subjects: `approvals.v1.resolved.<id>`, `approvals.v1.invalidated.all`
//!   (the empty agent id: every agent) and
//!   `approvals.v1.invalidated.agent.<agent>`, where `<id>`/`<agent>` is the
//!   base64url (no padding) of the UTF-8 string, so any id is one valid
//!   subject token.
//! * A stored message is an encoded `InvalidationEvent` without `seq` and
//!   `log_id`. A reader appends `seq` (field 1, varint) and `log_id` (field
//!   4, fixed64) to the raw bytes: protobuf keeps the last value of a
//!   scalar field, so the host never decodes them.
//! * The log id (S16) is a digest of the stream's name and creation time:
//!   the same for every server of a cluster and every reader, another one
//!   when the stream is deleted and created again.

use async_nats::jetstream;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use prost::encoding::{encode_varint, encoded_len_varint};
use sha2::{Digest, Sha256};

/// Every subject of the log.
pub const ALL_SUBJECTS: &str = "approvals.v1.>";

/// Subjects of every verdict.
pub const RESOLVED_SUBJECTS: &str = "approvals.v1.resolved.>";

/// The subject of invalidations for every agent.
pub const INVALIDATED_ALL: &str = "approvals.v1.invalidated.all";

/// The subject of `request_id`'s verdict.
pub fn resolved_subject(request_id: &str) -> String {
    format!(
        "approvals.v1.resolved.{}",
        URL_SAFE_NO_PAD.encode(request_id)
    )
}

/// The subject of a policy invalidation for `agent_id` (empty: every agent).
pub fn invalidated_subject(agent_id: &str) -> String {
    if agent_id.is_empty() {
        INVALIDATED_ALL.to_owned()
    } else {
        format!(
            "approvals.v1.invalidated.agent.{}",
            URL_SAFE_NO_PAD.encode(agent_id)
        )
    }
}

/// What a subscriber for `agent_id` reads: every verdict, and the
/// invalidations for every agent and for its own (all of them when empty).
pub fn filter_subjects(agent_id: &str) -> Vec<String> {
    if agent_id.is_empty() {
        vec![ALL_SUBJECTS.to_owned()]
    } else {
        vec![
            RESOLVED_SUBJECTS.to_owned(),
            INVALIDATED_ALL.to_owned(),
            invalidated_subject(agent_id),
        ]
    }
}

/// The log id (S16) of a stream; see [`log_id_of`].
pub fn log_id(info: &jetstream::stream::Info) -> u64 {
    log_id_of(&info.config.name, info.created.unix_timestamp_nanos())
}

/// The log id of stream `name` created at `created_unix_ns`: the first 8
/// bytes (big-endian) of SHA-256 over `approvals.v1.log`, a zero byte, the
/// name, a zero byte and the creation time in Unix nanoseconds as decimal
/// text; never 0 (0 means "unknown" on the wire).
pub fn log_id_of(name: &str, created_unix_ns: i128) -> u64 {
    let digest = Sha256::new()
        .chain_update(b"approvals.v1.log\0")
        .chain_update(name.as_bytes())
        .chain_update([0])
        .chain_update(created_unix_ns.to_string().as_bytes())
        .finalize();
    let mut head = [0; 8];
    head.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(head).max(1)
}

/// `Nats-Msg-Id` of a verdict: hex SHA-256 over `approvals.v1.msg`, a zero
/// byte, the id, a zero byte and the decision as a big-endian `i32`, so a
/// repeat of the same decision is recognised and a different one is not.
pub fn message_id(request_id: &str, decision: i32) -> String {
    let digest = Sha256::new()
        .chain_update(b"approvals.v1.msg\0")
        .chain_update(request_id.as_bytes())
        .chain_update([0])
        .chain_update(decision.to_be_bytes())
        .finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A message as the log stores it: the encoded `InvalidationEvent` without
/// `seq` and `log_id` (readers append both).
pub fn stored_bytes(event: approval_proto::Event) -> Vec<u8> {
    use prost::Message;
    approval_proto::InvalidationEvent {
        seq: 0,
        log_id: 0,
        event: Some(event),
    }
    .encode_to_vec()
}

/// Where the log stores `event` and what it stores: its subject and its
/// bytes ([`stored_bytes`]).
pub fn stored_message(event: approval_proto::Event) -> (String, Vec<u8>) {
    let subject = match &event {
        approval_proto::Event::ApprovalResolved(r) => resolved_subject(&r.request_id),
        approval_proto::Event::PolicyInvalidated(p) => invalidated_subject(&p.agent_id),
    };
    (subject, stored_bytes(event))
}

/// The most bytes [`append_frame`] adds to a stored message (a tag and a
/// ten-byte varint, a tag and eight bytes): a reader skips a message whose
/// frame would be over the sink's limit.
pub const APPENDED_MAX: usize = 1 + 10 + 1 + 8;

/// Field 1 (`seq`), wire type varint.
const SEQ_TAG: u8 = 0x08;
/// Field 4 (`log_id`), wire type fixed64.
const LOG_ID_TAG: u8 = 0x21;

/// Appends one length-delimited frame: the stored `payload` with `seq`
/// (field 1, varint) and `log_id` (field 4, fixed64) after it.
pub fn append_frame(out: &mut Vec<u8>, payload: &[u8], seq: u64, log_id: u64) {
    let tail = 1 + encoded_len_varint(seq) + 1 + 8;
    encode_varint((payload.len() + tail) as u64, out);
    out.extend_from_slice(payload);
    out.push(SEQ_TAG);
    encode_varint(seq, out);
    out.push(LOG_ID_TAG);
    out.extend_from_slice(&log_id.to_le_bytes());
}

/// A stored message as one unsequenced frame body: the one definition,
/// shared with every source that looks verdicts up.
pub use approval_host::sources::unsequenced_frame;

#[cfg(test)]
mod tests;
