//! The conformance scenarios of `tests/scenarios/` (SPEC.md §12) through the
//! Rust host: each file is replayed against a sink on the embedded
//! component with a `ManualClock`, and every expectation in it must hold.
//! The Python (`tests/py/test_scenarios.py`) and JavaScript
//! (`tests/js/test/scenarios.test.mjs`) hosts replay the same files.
//!
//! A scenario that needs a capability this host lacks fails, unless it is
//! named in [`EXCEPTIONS`] with the reason (this host has none).

use approval_host::{
    ApprovalSink, Decision, HostError, ManualClock, Outcome, SinkConfig, SinkError, Stats,
    TrustedKey, Verdict, Wait, WaitError,
};
use approval_proto::{ApprovalResolved, Event, InvalidationEvent, PolicyInvalidated};
use approval_tests::time::settle;
use futures::FutureExt;
use prost::Message;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::broadcast;

/// What this host can run beyond the basic operations.
const CAPABILITIES: &[&str] = &["trap"];

/// Scenarios this host does not run, each with the reason.
const EXCEPTIONS: &[(&str, &str)] = &[];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn vectors(name: &str) -> Value {
    read_json(&repo().join("tests/vectors").join(name))
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

/// A JSON number or decimal string as a `u64`.
fn number(v: &Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("not a number: {v}"))
}

fn ms(v: &Value) -> Duration {
    if v.as_str() == Some("max") {
        Duration::MAX
    } else {
        Duration::from_millis(number(v))
    }
}

/// The WIT name of a typed error (the names the scenario files use).
fn kind(e: &SinkError) -> &'static str {
    match e {
        SinkError::RequestIdTooLong(_) => "request-id-too-long",
        SinkError::RequestIdEmpty => "request-id-empty",
        SinkError::TooManyWaiters(_) => "too-many-waiters",
        SinkError::FrameTooLarge(_) => "frame-too-large",
        SinkError::MalformedFrame(_) => "malformed-frame",
        SinkError::UnknownDecision(_) => "unknown-decision",
        SinkError::DuplicateWaiter(_) => "duplicate-waiter",
        SinkError::ConflictingVerdict => "conflicting-verdict",
        SinkError::Unauthenticated(_) => "unauthenticated",
        SinkError::InvalidConfig(_) => "invalid-config",
        SinkError::GuestFault(_) => "guest-fault",
        SinkError::CrashLoop(_) => "crash-loop",
    }
}

/// The WIT name of a wait's error.
fn wait_kind(e: &WaitError) -> &'static str {
    match e {
        WaitError::RequestIdTooLong(_) => "request-id-too-long",
        WaitError::RequestIdEmpty => "request-id-empty",
        WaitError::TooManyWaiters(_) => "too-many-waiters",
        WaitError::CrashLoop(_) => "crash-loop",
        WaitError::Refused(e) => kind(e),
    }
}

fn outcome_json(result: &Result<Outcome, WaitError>) -> Value {
    match result {
        Ok(Outcome::Decided(Verdict::Approved)) => json!("approved"),
        Ok(Outcome::Decided(Verdict::Denied)) => json!("denied"),
        Ok(Outcome::TimedOut) => json!("timed-out"),
        Ok(Outcome::Cancelled) => json!("cancelled"),
        Ok(Outcome::Reset) => json!("reset"),
        Err(e) => json!({ "error": wait_kind(e) }),
    }
}

fn decision(name: &str) -> Decision {
    match name {
        "approved" => Decision::Approved,
        "denied" => Decision::Denied,
        other => panic!("not a verdict in a scenario: {other}"),
    }
}

/// One scenario event as prost encodes it (the body, no length prefix).
fn event_bytes(e: &Value) -> Vec<u8> {
    if let Some(hex) = e["hex"].as_str() {
        return unhex(hex);
    }
    let event = if let Some(v) = e.get("verdict") {
        Event::ApprovalResolved(ApprovalResolved {
            request_id: v["id"].as_str().expect("id").to_owned(),
            decision: v["decision"].as_i64().expect("decision") as i32,
            reviewer: v["reviewer"].as_str().unwrap_or_default().to_owned(),
            resolved_at_unix_ms: v.get("resolved_at_unix_ms").map_or(0, |t| number(t) as i64),
            key_id: v["key_id"].as_str().unwrap_or_default().to_owned(),
            signature: unhex(v["signature"].as_str().unwrap_or_default()),
        })
    } else {
        Event::PolicyInvalidated(PolicyInvalidated {
            agent_id: e["invalidation"].as_str().expect("invalidation").to_owned(),
        })
    };
    InvalidationEvent {
        seq: e.get("seq").map_or(0, number),
        event: Some(event),
        log_id: e.get("log_id").map_or(0, number),
    }
    .encode_to_vec()
}

fn stat(s: &Stats, name: &str) -> u64 {
    match name {
        "waiters" => u64::from(s.waiters),
        "ids" => u64::from(s.ids),
        "cached_verdicts" => u64::from(s.cached_verdicts),
        "delivered" => s.delivered,
        "timed_out" => s.timed_out,
        "cancelled" => s.cancelled,
        "early_hits" => s.early_hits,
        "evictions" => s.evictions,
        "conflicts" => s.conflicts,
        "unauthenticated" => s.unauthenticated,
        "malformed" => s.malformed,
        "duplicates" => s.duplicates,
        "last_seq" => s.last_seq,
        "log_id" => s.log_id,
        "log_changes" => s.log_changes,
        "invalidations" => s.invalidations,
        "resets" => s.resets,
        other => panic!("no counter {other}"),
    }
}

/// A named wait: still pending, or how it ended.
enum Named {
    Pending(Wait),
    Ended(Result<Outcome, WaitError>),
}

struct Run {
    sink: ApprovalSink,
    clock: ManualClock,
    waits: BTreeMap<String, Named>,
    invalidations: broadcast::Receiver<String>,
    heard: Vec<String>,
}

impl Run {
    /// Lets the sink's timer task catch up and sends the queue, then reads
    /// every named wait once.
    async fn observe(&mut self) {
        let _ = self.sink.waiter_count();
        settle().await;
        for named in self.waits.values_mut() {
            if let Named::Pending(wait) = named
                && let Some(result) = wait.now_or_never()
            {
                *named = Named::Ended(result);
            }
        }
    }

    async fn step(&mut self, step: &Value, at: &str) {
        let sink = &self.sink;
        if let Some(name) = step["wait"].as_str() {
            let wait = sink.wait(step["id"].as_str().expect("id"), ms(&step["timeout_ms"]));
            self.waits.insert(name.to_owned(), Named::Pending(wait));
        } else if let Some(name) = step["cancel"].as_str() {
            // Dropping a wait is how a Rust host cancels it (S7).
            self.waits.remove(name);
        } else if let Some(id) = step["deliver"].as_str() {
            let result = sink.deliver(id, decision(step["decision"].as_str().expect("decision")));
            match (&step["error"], result) {
                (Value::String(want), Err(e)) => assert_eq!(kind(&e), want, "{at}"),
                (Value::Null, Ok(woken)) => {
                    assert_eq!(u64::from(woken), number(&step["woken"]), "{at}: woken")
                }
                (want, got) => panic!("{at}: wanted {want}, got {got:?}"),
            }
        } else if step.get("frame").is_some()
            || step.get("frame_hex").is_some()
            || step.get("frame_vector").is_some()
        {
            let bytes = if let Some(e) = step.get("frame") {
                event_bytes(e)
            } else if let Some(hex) = step["frame_hex"].as_str() {
                unhex(hex)
            } else {
                let v = &step["frame_vector"];
                let file = vectors(v["file"].as_str().expect("file"));
                let index = number(&v["verdict"]) as usize;
                unhex(file["verdicts"][index]["frame"].as_str().expect("frame"))
            };
            let result = sink.push_frame(&bytes);
            match (&step["error"], result) {
                (Value::String(want), Err(e)) => assert_eq!(kind(&e), want, "{at}"),
                (Value::Null, Ok(())) => {}
                (want, got) => panic!("{at}: wanted {want}, got {got:?}"),
            }
        } else if let Some(events) = step["stream"].as_array() {
            let mut bytes = Vec::new();
            for e in events {
                let body = event_bytes(e);
                prost::encoding::encode_varint(body.len() as u64, &mut bytes);
                bytes.extend_from_slice(&body);
            }
            if step["bytewise"].as_bool() == Some(true) {
                for byte in bytes.chunks(1) {
                    sink.ingest_bytes(byte).expect("ingest");
                }
            } else {
                let report = sink.ingest_bytes(&bytes).expect("ingest");
                let want = &step["report"];
                let got = json!({
                    "events": report.events,
                    "duplicates": report.duplicates,
                    "rejected": report.rejected,
                });
                for key in ["events", "duplicates", "rejected"] {
                    assert_eq!(got[key], want[key], "{at}: report {key}");
                }
                // How many errors the report lists (bounded, S20), when named.
                if let Some(errors) = want.get("errors") {
                    assert_eq!(json!(report.errors.len()), *errors, "{at}: report errors");
                }
            }
        } else if let Some(delta) = step.get("advance_ms") {
            self.clock.advance(ms(delta));
            settle().await;
        } else if step.get("trap").is_some() {
            sink.inject_trap();
        } else if let Some(expected) = step["outcomes"].as_object() {
            self.observe().await;
            for (name, want) in expected {
                let got = match &self.waits[name] {
                    Named::Pending(_) => json!("waiting"),
                    Named::Ended(result) => outcome_json(result),
                };
                assert_eq!(&got, want, "{at}: wait {name}");
            }
        } else if let Some(expected) = step["stats"].as_object() {
            let stats = sink.stats().await;
            for (name, want) in expected {
                assert_eq!(stat(&stats, name), number(want), "{at}: counter {name}");
            }
        } else if let Some(want) = step.get("waiters") {
            assert_eq!(sink.waiter_count() as u64, number(want), "{at}: waiters");
        } else if let Some(id) = step["decided_by"].as_str() {
            let got = sink.decided_by(id);
            match (&step["is"], got) {
                (Value::Null, None) => {}
                (Value::Object(want), Some(by)) => {
                    let got = json!({
                        "decision": if by.decision == Verdict::Approved { "approved" } else { "denied" },
                        "reviewer": by.reviewer,
                        "key_id": by.key_id,
                    });
                    for (key, value) in want {
                        assert_eq!(&got[key], value, "{at}: decided_by {key}");
                    }
                }
                (want, got) => panic!("{at}: decided_by wanted {want}, got {got:?}"),
            }
        } else if let Some(want) = step["invalidated"].as_array() {
            while let Ok(agent) = self.invalidations.try_recv() {
                self.heard.push(agent);
            }
            let want: Vec<&str> = want.iter().map(|a| a.as_str().expect("agent")).collect();
            assert_eq!(self.heard, want, "{at}: invalidations heard");
        } else if let Some(want) = step.get("resume_point") {
            let point = sink.resume_point();
            assert_eq!(point.log_id, number(&want["log_id"]), "{at}: log_id");
            assert_eq!(point.last_seq, number(&want["last_seq"]), "{at}: last_seq");
        } else {
            panic!("{at}: unknown step {step}");
        }
    }
}

fn config_of(scenario: &Value) -> SinkConfig {
    let mut config = SinkConfig::default();
    if let Some(c) = scenario["config"].as_object() {
        for (key, value) in c {
            match key.as_str() {
                "max_waiters" => config.max_waiters = number(value) as u32,
                "max_request_id_bytes" => config.max_request_id_bytes = number(value) as u32,
                "max_frame_bytes" => config.max_frame_bytes = number(value) as u32,
                "verdict_cache_capacity" => config.verdict_cache_capacity = number(value) as u32,
                "verdict_cache_ttl_ms" => config.verdict_cache_ttl = ms(value),
                "max_timeout_ms" => config.max_timeout = ms(value),
                other => panic!("no config field {other}"),
            }
        }
    }
    config
}

fn trusted_keys(scenario: &Value) -> Vec<TrustedKey> {
    let Some(file) = scenario["trusted_keys"].as_str() else {
        return Vec::new();
    };
    let key = &vectors(file)["key"];
    let public = unhex(key["public_key"].as_str().expect("public key"));
    vec![TrustedKey {
        id: key["id"].as_str().expect("id").to_owned(),
        public_key: public.try_into().expect("32 bytes"),
    }]
}

async fn replay(name: &str, scenario: &Value) {
    let clock = ManualClock::new();
    let built = ApprovalSink::builder()
        .clock(clock.clone())
        .config(config_of(scenario))
        .trusted_keys(trusted_keys(scenario))
        .build();
    if let Some(want) = scenario["build_error"].as_str() {
        match built {
            Err(HostError::Config(e)) => assert_eq!(kind(&e), want, "{name}"),
            Err(e) => panic!("{name}: wanted {want}, got {e}"),
            Ok(_) => panic!("{name}: wanted {want}, the sink was built"),
        }
        return;
    }
    let sink = built.unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut run = Run {
        invalidations: sink.subscribe_invalidations(),
        sink,
        clock,
        waits: BTreeMap::new(),
        heard: Vec::new(),
    };
    for (i, step) in scenario["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .enumerate()
    {
        run.step(step, &format!("{name} step {i}")).await;
    }
}

#[tokio::test]
async fn every_scenario_holds_in_the_rust_host() {
    let dir = repo().join("tests/scenarios");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/scenarios")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    names.sort();
    assert!(names.len() >= 20, "the scenarios are all there");
    let mut ran = 0;
    for path in names {
        let name = path
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .into_owned();
        let scenario = read_json(&path);
        let missing: Vec<&str> = scenario["needs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|need| !CAPABILITIES.contains(need))
            .collect();
        if !missing.is_empty() {
            assert!(
                EXCEPTIONS.iter().any(|(n, _)| *n == name),
                "{name} needs {missing:?}, which this host lacks, and is not an exception"
            );
            continue;
        }
        replay(&name, &scenario).await;
        ran += 1;
    }
    assert!(ran > 0);
}

/// Rules no scenario can show, because they are about one host's runtime,
/// each with the reason (SPEC.md §12).
const HOST_ONLY_RULES: &[(&str, &str)] = &[(
    "S14",
    "sinks across threads and runtime flavours: each host's own suite",
)];

#[test]
fn every_shared_rule_has_a_scenario() {
    let mut covered = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(repo().join("tests/scenarios")).expect("tests/scenarios") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "json") {
            for rule in read_json(&path)["rules"].as_array().into_iter().flatten() {
                covered.insert(rule.as_str().expect("a rule is a string").to_owned());
            }
        }
    }
    let missing: Vec<String> = (1..=20)
        .map(|n| format!("S{n}"))
        .filter(|r| !covered.contains(r) && !HOST_ONLY_RULES.iter().any(|(h, _)| h == r))
        .collect();
    assert!(missing.is_empty(), "rules with no scenario: {missing:?}");
}

/// The keys a scenario file may hold (SPEC.md §12).
const SCENARIO_KEYS: &[&str] = &[
    "rules",
    "about",
    "needs",
    "config",
    "trusted_keys",
    "build_error",
    "steps",
];

/// Each step's kind (its first key in this table that it holds) and every
/// key that kind may carry.
const STEP_SHAPES: &[(&str, &[&str])] = &[
    ("wait", &["id", "timeout_ms"]),
    ("cancel", &[]),
    ("deliver", &["decision", "woken", "error"]),
    ("frame", &["error"]),
    ("frame_hex", &["error"]),
    ("frame_vector", &["error"]),
    // `report` or `bytewise`, never both: a bytewise stream has no one
    // report to compare.
    ("stream", &["report", "bytewise"]),
    ("advance_ms", &[]),
    ("trap", &[]),
    ("outcomes", &[]),
    ("stats", &[]),
    ("waiters", &[]),
    ("decided_by", &["is"]),
    ("invalidated", &[]),
    ("resume_point", &[]),
];

/// The runners read only the keys they know, so a misspelt key would be
/// ignored in every host alike; the files are checked here, once for all.
#[test]
fn every_scenario_file_holds_only_known_keys() {
    for entry in std::fs::read_dir(repo().join("tests/scenarios")).expect("tests/scenarios") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let name = path.display();
        let scenario = read_json(&path);
        for key in scenario.as_object().expect("an object").keys() {
            assert!(
                SCENARIO_KEYS.contains(&key.as_str()),
                "{name}: unknown key {key}"
            );
        }
        for (i, step) in scenario["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .enumerate()
        {
            let step = step.as_object().expect("a step is an object");
            let Some((kind, extra)) = STEP_SHAPES.iter().find(|(k, _)| step.contains_key(*k))
            else {
                panic!("{name} step {i}: no known operation in {step:?}");
            };
            for key in step.keys() {
                assert!(
                    key == kind || extra.contains(&key.as_str()),
                    "{name} step {i}: `{key}` does not belong to a `{kind}` step"
                );
            }
            if *kind == "stream" {
                assert!(
                    step.contains_key("report") != step.contains_key("bytewise"),
                    "{name} step {i}: a stream step has a report or is bytewise"
                );
            }
        }
    }
}
