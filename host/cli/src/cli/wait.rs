//! `approval-sink wait`: one agent waiting for one approval through a
//! gateway or the NATS log (SPEC.md §10: exit codes, the one stdout line).

use super::client::{ClientArgs, runtime, trusted_keys};
use super::exit::Exit;
use super::output::{json_string, text, value};
use approval_grpc::GrpcSource;
use approval_host::{ApprovalSink, DecidedBy, Decision};
use approval_nats::NatsSource;
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args)]
pub struct WaitArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The approval request to wait on.
    #[arg(long)]
    request_id: String,
    /// How long to wait before falling back to Pending (e.g. 30s, 2m).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Apply only verdicts signed by this reviewer key (`ID.pub`;
    /// repeatable).
    #[arg(long, value_name = "PUB")]
    trusted_key: Vec<PathBuf>,
    /// Print one JSON object instead of the line.
    #[arg(long)]
    json: bool,
}

/// Exit code of `wait`: 0 approved, 1 denied, 2 pending (no answer in
/// time), 3 not served: credentials or TLS refused (at once), or the
/// gateway never reached during the whole wait. Prints one line on stdout:
/// the decision, then ` reviewer=NAME` when known and ` key=ID` when
/// signed, each value bare or quoted (`output.rs`); with `--json`, one
/// JSON object.
pub fn wait(args: WaitArgs, component: Option<PathBuf>) -> anyhow::Result<Exit> {
    let keys = trusted_keys(&args.trusted_key)?;
    let tls = args.client.tls()?;
    let token = args.client.token()?;
    runtime()?.block_on(async {
        let mut builder = ApprovalSink::builder().trusted_keys(keys);
        if let Some(path) = component {
            builder = builder.component_file(path);
        }
        let sink = builder.build()?;
        // The pump first: with NATS it also looks the new wait up in the
        // log (a verdict published before this wait began).
        let pump = match args.client.nats.config() {
            Some(config) => sink.pump(NatsSource::new(config)),
            None => {
                let mut source = GrpcSource::new(args.client.gateway.clone());
                if let Some(tls) = tls {
                    source = source.tls(tls);
                }
                if let Some(token) = token {
                    source = source.bearer_token(token);
                }
                sink.pump(source)
            }
        };
        // Counted from the pump's start: a wait that outlives it never
        // waits longer than its timeout for a connect result.
        let connect_deadline = tokio::time::Instant::now() + approval_grpc::CONNECT_DEADLINE;
        let wait = sink.wait_detailed(&args.request_id, args.timeout);
        eprintln!(
            "waiting up to {} for {} ...",
            humantime::format_duration(args.timeout),
            args.request_id
        );
        let refused = async {
            loop {
                if pump.stats().refused > 0 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        let resolution = tokio::select! {
            resolution = wait => resolution?,
            () = refused => {
                // Still exactly one line on stdout: no decision was made.
                println!("{}", report(Decision::Pending, None, args.json));
                let why = pump.stats().last_error.unwrap_or_default();
                eprintln!("not served: {}", text(&why));
                return Ok(Exit::NotServed);
            }
        };
        let decision = resolution.outcome.decision();
        if decision == Decision::Pending {
            // A wait shorter than the first connect (`--timeout 0s`) still
            // tells "reached, nobody answered" (2) from "never reached"
            // (3): the first connect's result is awaited, within the
            // client's connect deadline.
            first_connect_result(&pump, connect_deadline).await;
        }
        println!(
            "{}",
            report(decision, resolution.decided_by.as_ref(), args.json)
        );
        Ok(match decision {
            Decision::Approved => Exit::Success,
            Decision::Denied => Exit::Denied,
            // Pending because nobody could have answered: not served.
            _ if pump.stats().connects == 0 => {
                let why = pump.stats().last_error.unwrap_or_default();
                eprintln!("the gateway was never reached: {}", text(&why));
                Exit::NotServed
            }
            _ => Exit::Pending,
        })
    })
}

/// The one stdout line: `DECISION_X[ reviewer=V][ key=V]`, or with `json`
/// one object with `decision`, `reviewer`, `key_id` and
/// `resolved_at_unix_ms` (null when unknown).
fn report(decision: Decision, by: Option<&DecidedBy>, json: bool) -> String {
    let reviewer = by.and_then(|b| b.reviewer.as_deref());
    let key = by.and_then(|b| b.key_id.as_deref());
    if json {
        let string = |s: Option<&str>| s.map_or_else(|| "null".to_owned(), json_string);
        let at = by
            .and_then(|b| b.resolved_at_unix_ms)
            .map_or_else(|| "null".to_owned(), |ms| ms.to_string());
        return format!(
            r#"{{"decision":"{}","reviewer":{},"key_id":{},"resolved_at_unix_ms":{at}}}"#,
            decision.as_str_name(),
            string(reviewer),
            string(key),
        );
    }
    let mut line = decision.as_str_name().to_owned();
    if let Some(reviewer) = reviewer {
        line.push_str(&format!(" reviewer={}", value(reviewer)));
    }
    if let Some(key) = key {
        line.push_str(&format!(" key={}", value(key)));
    }
    line
}

/// Returns once the pump has connected or failed once, or at `deadline`
/// (the pump's start plus [`CONNECT_DEADLINE`](approval_grpc::CONNECT_DEADLINE)).
async fn first_connect_result(pump: &approval_host::sources::Pump, deadline: tokio::time::Instant) {
    while tokio::time::Instant::now() < deadline {
        let stats = pump.stats();
        if stats.connects > 0 || stats.failures > 0 || stats.refused > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
