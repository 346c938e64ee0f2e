//! NATS JetStream as the shared, durable event log of many machines (DESIGN
//! section 10): how to reach it ([`NatsConfig`]), its subjects, the log's
//! identity, and how a stored message becomes a guest frame. The source is
//! [`NatsSource`](crate::sources::NatsSource); conditional publishing is
//! [`VerdictLog`].
//!
//! # The log, as stored
//!
//! * One stream (default `APPROVALS`) over `approvals.v1.>`:
//!   `approvals.v1.resolved.<id>`, `approvals.v1.invalidated.all` (the empty
//!   agent id: every agent) and `approvals.v1.invalidated.agent.<agent>`,
//!   `<id>`/`<agent>` the base64url (no padding) of the UTF-8 string, so any
//!   id is one valid subject token.
//! * A message is an encoded `InvalidationEvent` without `seq`/`log_id`. A
//!   reader appends `seq` (field 1: the stream sequence) and `log_id` (field
//!   4) to the raw bytes; protobuf keeps the last value of a scalar field,
//!   so the host never decodes and the guest stays the only parser.
//! * The log id is a digest of the stream's name and creation time: the
//!   same for every server of a cluster and every reader, another one when
//!   the stream is deleted and created again (S16).
//! * Only the first verdict per id is stored: [`VerdictLog`] publishes with
//!   `Nats-Expected-Last-Subject-Sequence: 0` (S15 in the log).

mod follow;
mod publish;
pub mod server;

pub(crate) use follow::follow;
pub(crate) use publish::first_message;
pub use publish::{Published, VerdictConflict, VerdictLog};

use crate::sources::SourceError;
use async_nats::jetstream;
use async_nats::jetstream::stream::{Config as StreamConfig, StorageType};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::time::Duration;

/// The stream's name unless configured otherwise.
pub const DEFAULT_STREAM: &str = "APPROVALS";

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

/// The log id (S16) of a stream: the first 8 bytes (big-endian) of
/// SHA-256 over `approvals.v1.log`, a zero byte, the name, a zero byte and
/// the creation time in Unix nanoseconds as decimal text; never 0.
pub fn log_id(info: &jetstream::stream::Info) -> u64 {
    log_id_of(&info.config.name, info.created.unix_timestamp_nanos())
}

fn log_id_of(name: &str, created_unix_ns: i128) -> u64 {
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

/// The most bytes [`append_frame`] adds to a stored message (a tag and a
/// ten-byte varint, a tag and eight bytes): a reader skips a message whose
/// frame would be over the sink's limit.
pub const APPENDED_MAX: usize = 1 + 10 + 1 + 8;

/// Appends one length-delimited frame: the stored `payload` with `seq`
/// (field 1, varint) and `log_id` (field 4, fixed64) after it.
pub fn append_frame(out: &mut Vec<u8>, payload: &[u8], seq: u64, log_id: u64) {
    let mut tail = [0u8; APPENDED_MAX];
    let mut len = 0;
    tail[len] = 0x08; // field 1, varint
    len += 1;
    let mut v = seq;
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            tail[len] = byte;
            len += 1;
            break;
        }
        tail[len] = byte | 0x80;
        len += 1;
    }
    tail[len] = 0x21; // field 4, fixed64
    len += 1;
    tail[len..len + 8].copy_from_slice(&log_id.to_le_bytes());
    len += 8;
    prost::encoding::encode_varint((payload.len() + len) as u64, out);
    out.extend_from_slice(payload);
    out.extend_from_slice(&tail[..len]);
}

/// How to reach NATS and which stream holds the log. Credentials are read
/// from files when connecting; nothing secret is printed by `Debug`.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// Server URLs (`nats://host:4222`, `tls://...`); any of a cluster. A
    /// `user:password@` in one of them logs in as that user.
    pub servers: Vec<String>,
    /// A `.creds` file (JWT and NKey seed).
    pub creds_file: Option<PathBuf>,
    /// A token file (whitespace trimmed).
    pub token_file: Option<PathBuf>,
    /// Trust this CA (PEM) and require TLS.
    pub ca_file: Option<PathBuf>,
    /// The stream's name. Default [`DEFAULT_STREAM`].
    pub stream: String,
    /// Replicas when this config creates the stream (3 in a 3-node cluster).
    /// Default 1.
    pub replicas: usize,
}

impl NatsConfig {
    /// Servers given as a comma-separated list, the default stream, no
    /// credentials.
    pub fn new(servers: &str) -> Self {
        NatsConfig {
            servers: servers
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            creds_file: None,
            token_file: None,
            ca_file: None,
            stream: DEFAULT_STREAM.to_owned(),
            replicas: 1,
        }
    }

    /// A short name for logs.
    pub fn describe(&self) -> String {
        format!("NATS {} stream {}", self.servers.join(","), self.stream)
    }

    /// Connects within `timeout`. The client reconnects on its own after
    /// that (to any server of the list); a refused connection (credentials
    /// or TLS) is [`SourceError::Refused`].
    pub async fn connect(&self, timeout: Duration) -> Result<async_nats::Client, SourceError> {
        let endpoint = self.servers.join(",");
        let failed = |message: String| SourceError::Connect {
            endpoint: endpoint.clone(),
            message,
        };
        if self.servers.is_empty() {
            return Err(failed("no NATS server URL given".into()));
        }
        let mut options = async_nats::ConnectOptions::new()
            .connection_timeout(timeout)
            .ping_interval(timeout.max(Duration::from_secs(1)))
            // The client keeps reconnecting for as long as it lives; the
            // pump's backoff covers only opening the consumer again.
            .max_reconnects(None);
        if let Some(path) = &self.creds_file {
            options = options
                .credentials_file(path)
                .await
                .map_err(|e| SourceError::Refused {
                    endpoint: endpoint.clone(),
                    message: format!("credentials file {}: {e}", path.display()),
                })?;
        }
        if let Some(path) = &self.token_file {
            let token = std::fs::read_to_string(path).map_err(|e| SourceError::Refused {
                endpoint: endpoint.clone(),
                message: format!("token file {}: {e}", path.display()),
            })?;
            options = options.token(token.trim().to_owned());
        }
        // `nats://user:password@host` as the other NATS clients take it
        // (async-nats reads no credentials from URLs): from the first URL
        // that has them.
        if let Some((user, password)) = self.servers.iter().find_map(|url| {
            let addr = url.parse::<async_nats::ServerAddr>().ok()?;
            Some((addr.username()?.to_owned(), addr.password()?.to_owned()))
        }) {
            options = options.user_and_password(user, password);
        }
        if let Some(ca) = &self.ca_file {
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        options.connect(&self.servers).await.map_err(|e| {
            use async_nats::ConnectErrorKind as Kind;
            match e.kind() {
                Kind::Authentication | Kind::AuthorizationViolation | Kind::Tls => {
                    SourceError::Refused {
                        endpoint: endpoint.clone(),
                        message: e.to_string(),
                    }
                }
                _ => failed(e.to_string()),
            }
        })
    }

    /// The stream's config when this config creates it: file storage,
    /// every subject of the log, a two-minute duplicate window for retried
    /// publishes.
    pub fn stream_config(&self) -> StreamConfig {
        StreamConfig {
            name: self.stream.clone(),
            subjects: vec![ALL_SUBJECTS.to_owned()],
            storage: StorageType::File,
            num_replicas: self.replicas.max(1),
            duplicate_window: Duration::from_secs(120),
            allow_direct: true,
            ..Default::default()
        }
    }

    /// Binds the stream, creating it if it does not exist.
    pub async fn ensure_stream(
        &self,
        js: &jetstream::Context,
    ) -> Result<jetstream::stream::Stream, SourceError> {
        js.get_or_create_stream(self.stream_config())
            .await
            .map_err(|e| self.status(format!("stream {}: {e}", self.stream)))
    }

    /// A JetStream error of this log.
    pub(crate) fn status(&self, message: String) -> SourceError {
        SourceError::Status(format!("{}: {message}", self.describe()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approval_proto::{ApprovalResolved, Event, InvalidationEvent};
    use prost::Message;

    #[test]
    fn appended_seq_and_log_id_override_whatever_the_payload_says() {
        let stored = InvalidationEvent {
            seq: 7,
            log_id: 9,
            event: Some(Event::ApprovalResolved(ApprovalResolved {
                request_id: "req-1".into(),
                decision: 1,
                ..Default::default()
            })),
        }
        .encode_to_vec();
        for (seq, log) in [(1, 1), (u64::MAX, u64::MAX), (300, 0xdead_beef)] {
            let mut out = Vec::new();
            append_frame(&mut out, &stored, seq, log);
            let event = InvalidationEvent::decode_length_delimited(&out[..]).unwrap();
            assert_eq!((event.seq, event.log_id), (seq, log));
            assert!(
                matches!(event.event, Some(Event::ApprovalResolved(r)) if r.request_id == "req-1")
            );
        }
    }

    #[test]
    fn subjects_are_one_token_per_id_whatever_the_id() {
        assert_eq!(resolved_subject("req-1"), "approvals.v1.resolved.cmVxLTE");
        let odd = resolved_subject("a.b *>\u{e9}");
        let token = odd.strip_prefix("approvals.v1.resolved.").unwrap();
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(invalidated_subject(""), INVALIDATED_ALL);
        assert_eq!(
            filter_subjects("agent-7"),
            [
                RESOLVED_SUBJECTS,
                INVALIDATED_ALL,
                "approvals.v1.invalidated.agent.YWdlbnQtNw"
            ]
        );
    }

    #[test]
    fn the_log_id_changes_with_the_stream_and_its_creation() {
        let a = log_id_of("APPROVALS", 1_700_000_000_000_000_001);
        assert_ne!(a, 0);
        assert_eq!(a, log_id_of("APPROVALS", 1_700_000_000_000_000_001));
        assert_ne!(a, log_id_of("APPROVALS", 1_700_000_000_000_000_002));
        assert_ne!(a, log_id_of("OTHER", 1_700_000_000_000_000_001));
    }
}
