//! Who may use the gateway (SPEC.md §8): bearer tokens per service,
//! compared in constant time, and, with trusted reviewer keys, signature
//! checks and first-wins on `Resolve` (S16, S17).
//!
//! # Rules
//!
//! * A service with a token configured answers `UNAUTHENTICATED` to a call
//!   without `authorization: Bearer <that token>`; without one it is open
//!   (development on loopback; the CLI refuses other addresses).
//! * With trusted keys, a `Resolve` must be signed by one of them
//!   (`PERMISSION_DENIED` otherwise: defence in depth, the sinks verify
//!   again), and the first verified verdict for an id wins: the same
//!   decision again is answered with the first one's seq, the other one
//!   with `ALREADY_EXISTS` naming the verdict that stands. Without trusted
//!   keys the gateway cannot tell a forged verdict from a genuine one, so it
//!   publishes every valid `Resolve` and leaves first-wins to the sinks.
//! * The first-wins memory is bounded ([`FIRST_WINS_CAPACITY`] ids, oldest
//!   forgotten first, counted).

use approval_guest::trust::TrustedKeys;
use approval_guest::verdict::Verdict;
use approval_guest::wire;
use approval_host::TrustedKey;
use approval_proto::{ApprovalResolved, Decision};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use subtle::ConstantTimeEq;
use tonic::metadata::MetadataMap;
use tonic::{Request, Status};

/// Most request ids whose first verified verdict the gateway remembers.
pub const FIRST_WINS_CAPACITY: usize = 100_000;

/// A bearer token a service requires.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    /// A token (surrounding whitespace trimmed, as read from a file).
    /// `None` for an empty one.
    pub fn new(token: &str) -> Option<Self> {
        let token = token.trim();
        (!token.is_empty()).then(|| Token(token.to_owned()))
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

/// The body of a call that carries `authorization: Bearer <token>` when
/// `required` is set (compared in constant time for tokens of the same
/// length); `UNAUTHENTICATED` otherwise.
pub(super) fn authorized<T>(required: Option<&Token>, request: Request<T>) -> Result<T, Status> {
    let Some(Token(expected)) = required else {
        return Ok(request.into_inner());
    };
    let presented = bearer_of(request.metadata()).unwrap_or_default();
    if bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(request.into_inner())
    } else {
        Err(Status::unauthenticated(
            "missing or wrong bearer token (authorization: Bearer ...)",
        ))
    }
}

fn bearer_of(metadata: &MetadataMap) -> Option<&str> {
    metadata
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// What the gateway's `Resolve` enforces with trusted keys.
pub(super) struct Reviewers {
    keys: Mutex<TrustedKeys>,
    first: Mutex<FirstWins>,
}

/// The first verified verdict per request id, bounded.
#[derive(Default)]
struct FirstWins {
    by_id: HashMap<String, (Verdict, u64)>,
    order: VecDeque<String>,
}

/// What `Resolve` should do with a verified verdict.
pub(super) enum Standing {
    /// No verdict stands for the id: publish it.
    New,
    /// The same verdict stands, published at this seq.
    Same(u64),
}

impl Reviewers {
    /// Trusts `keys`; `None` when there are none (no checks).
    pub(super) fn new(keys: &[TrustedKey]) -> Result<Option<Self>, &'static str> {
        if keys.is_empty() {
            return Ok(None);
        }
        let mut trusted = TrustedKeys::default();
        trusted
            .set(keys.iter().map(|k| (k.id.as_str(), &k.public_key[..])))
            .map_err(|e| e.reason())?;
        Ok(Some(Reviewers {
            keys: Mutex::new(trusted),
            first: Mutex::new(FirstWins::default()),
        }))
    }

    /// Checks the signature of a validated `Resolve` (`PERMISSION_DENIED`).
    pub(super) fn verify(&self, resolved: &ApprovalResolved) -> Result<Verdict, Status> {
        let verdict = Verdict::from_wire(resolved.decision)
            .ok_or_else(|| Status::invalid_argument("not a verdict"))?;
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .verify(&wire::Resolved::from(resolved), verdict)
            .map_err(|why| {
                Status::permission_denied(format!(
                    "verdict not signed by a trusted reviewer key ({why:?})"
                ))
            })?;
        Ok(verdict)
    }

    /// Publishes `verdict` for `id` with `publish` unless one stands
    /// already (first wins, under one lock so two racing `Resolve`s cannot
    /// both win).
    pub(super) fn first_wins(
        &self,
        id: &str,
        verdict: Verdict,
        publish: impl FnOnce() -> u64,
    ) -> Result<u64, Status> {
        let mut first = self
            .first
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match first.standing(id, verdict)? {
            Standing::Same(seq) => Ok(seq),
            Standing::New => {
                let seq = publish();
                first.remember(id, verdict, seq);
                Ok(seq)
            }
        }
    }
}

impl FirstWins {
    fn standing(&self, id: &str, verdict: Verdict) -> Result<Standing, Status> {
        match self.by_id.get(id) {
            None => Ok(Standing::New),
            Some(&(stood, seq)) if stood == verdict => Ok(Standing::Same(seq)),
            Some(&(stood, seq)) => Err(Status::already_exists(format!(
                "{} already stands for {id} (seq {seq})",
                Decision::as_str_name(&stood.decision())
            ))),
        }
    }

    fn remember(&mut self, id: &str, verdict: Verdict, seq: u64) {
        if self.order.len() >= FIRST_WINS_CAPACITY
            && let Some(oldest) = self.order.pop_front()
        {
            self.by_id.remove(&oldest);
        }
        self.by_id.insert(id.to_owned(), (verdict, seq));
        self.order.push_back(id.to_owned());
    }
}
