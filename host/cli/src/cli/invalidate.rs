//! `approval-sink invalidate`: a policy invalidation, through a gateway or
//! the NATS log.

use super::client::{ClientArgs, runtime};
use clap::Args;

#[derive(Args)]
pub struct InvalidateArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The agent whose policy changed; empty: every agent.
    #[arg(long, default_value = "")]
    agent_id: String,
}

/// Publishes one policy invalidation and prints its sequence number.
pub fn invalidate(args: InvalidateArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let seq = match args.client.nats.config() {
            Some(config) => {
                let invalidated = approval_proto::PolicyInvalidated {
                    agent_id: args.agent_id.clone(),
                };
                super::nats::open(config)
                    .await?
                    .publish_invalidation(&invalidated)
                    .await?
            }
            None => {
                let mut client = args.client.review_client().await?;
                client.invalidate(&args.agent_id).await?
            }
        };
        let who = if args.agent_id.is_empty() {
            "every agent".into()
        } else {
            super::output::value(&args.agent_id)
        };
        println!("policy invalidated for {who} (seq {seq})");
        Ok(())
    })
}
