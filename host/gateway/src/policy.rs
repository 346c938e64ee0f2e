//! What `Gateway::serve` refuses before it serves anything (SPEC.md §8):
//! no service open to whoever connects, no secret shared by reviewers and
//! subscribers, no plaintext off loopback; and the reminder that
//! `insecure_dev` prints while it is in force.

use crate::auth::Token;
use crate::error::GatewayError;
use std::net::SocketAddr;
use std::time::Duration;

/// How often an `insecure_dev` gateway says so again.
pub const INSECURE_REMINDER: Duration = Duration::from_secs(60);

/// What the serving policy looks at: [`Gateway::serve`](crate::Gateway::serve)
/// checks it, and a caller can check it first (the CLI does, before it
/// opens a log).
#[derive(Debug, Clone, Copy)]
pub struct Policy<'a> {
    /// The `ReviewService` token, if any.
    pub review_token: Option<&'a Token>,
    /// The `Subscribe`/`Lookup` token, if any.
    pub subscribe_token: Option<&'a Token>,
    /// Whether TLS is configured.
    pub tls: bool,
    /// Whether the policy is waived ([`Gateway::insecure_dev`](crate::Gateway::insecure_dev)).
    pub insecure_dev: bool,
}

impl Policy<'_> {
    /// Whether a gateway so configured may serve on `addr`.
    ///
    /// * The same secret for both services is always refused: a subscriber
    ///   could then approve.
    /// * Both tokens are required on every address, loopback included
    ///   (another local user or a container sharing the network could
    ///   otherwise publish the first verdict), unless `insecure_dev`.
    /// * A non-loopback address also needs TLS, unless `insecure_dev`.
    pub fn check(&self, addr: SocketAddr) -> Result<(), GatewayError> {
        if let (Some(review), Some(subscribe)) = (self.review_token, self.subscribe_token)
            && review == subscribe
        {
            return Err(GatewayError::SameToken);
        }
        if self.insecure_dev {
            return Ok(());
        }
        if self.review_token.is_none() || self.subscribe_token.is_none() {
            return Err(GatewayError::Open { addr });
        }
        if !addr.ip().is_loopback() && !self.tls {
            return Err(GatewayError::Exposed { addr });
        }
        Ok(())
    }
}

/// Warns that `addr` is served without the policy, now and every
/// [`INSECURE_REMINDER`] until dropped.
pub(crate) async fn remind_insecure(addr: SocketAddr) {
    let mut every = tokio::time::interval(INSECURE_REMINDER);
    loop {
        every.tick().await;
        tracing::warn!(
            %addr,
            "INSECURE: serving with --insecure-dev; whoever can reach this address may be able to \
             approve any request"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{MIN_TOKEN_BYTES, TokenError};

    fn policy<'a>(review: Option<&'a Token>, subscribe: Option<&'a Token>) -> Policy<'a> {
        Policy {
            review_token: review,
            subscribe_token: subscribe,
            tls: false,
            insecure_dev: false,
        }
    }

    const LOOPBACK: &str = "127.0.0.1:50051";
    const EXPOSED: &str = "0.0.0.0:50051";

    #[test]
    fn loopback_is_not_open_without_both_tokens() {
        let addr = LOOPBACK.parse().unwrap();
        let review = Token::new("r3view-token-0123456789").unwrap();
        let subscribe = Token::new("subscr1be-token-0123456789").unwrap();
        for (r, s) in [
            (None, None),
            (Some(&review), None),
            (None, Some(&subscribe)),
        ] {
            assert!(matches!(
                policy(r, s).check(addr),
                Err(GatewayError::Open { .. })
            ));
        }
        policy(Some(&review), Some(&subscribe)).check(addr).unwrap();
        let dev = Policy {
            insecure_dev: true,
            ..policy(None, None)
        };
        dev.check(addr).unwrap();
    }

    #[test]
    fn the_same_secret_for_both_services_is_refused_even_in_development() {
        let token = Token::new("the-same-token-for-both").unwrap();
        let again = Token::new("the-same-token-for-both\n").unwrap();
        let dev = Policy {
            insecure_dev: true,
            ..policy(Some(&token), Some(&again))
        };
        assert!(matches!(
            dev.check(LOOPBACK.parse().unwrap()),
            Err(GatewayError::SameToken)
        ));
    }

    #[test]
    fn plaintext_off_loopback_is_refused() {
        let review = Token::new("r3view-token-0123456789").unwrap();
        let subscribe = Token::new("subscr1be-token-0123456789").unwrap();
        let addr = EXPOSED.parse().unwrap();
        let plain = policy(Some(&review), Some(&subscribe));
        assert!(matches!(
            plain.check(addr),
            Err(GatewayError::Exposed { .. })
        ));
        Policy { tls: true, ..plain }.check(addr).unwrap();
    }

    #[test]
    fn short_empty_and_unsendable_tokens_are_refused() {
        assert_eq!(Token::new(" \n"), Err(TokenError::Empty));
        assert_eq!(Token::new("x"), Err(TokenError::TooShort(1)));
        let short = "a".repeat(MIN_TOKEN_BYTES - 1);
        assert_eq!(
            Token::new(&short),
            Err(TokenError::TooShort(MIN_TOKEN_BYTES - 1))
        );
        assert_eq!(
            Token::new("has a space in it, long enough"),
            Err(TokenError::NotVisibleAscii)
        );
        assert_eq!(
            Token::new("ünïcödé-tøken-long-enough"),
            Err(TokenError::NotVisibleAscii)
        );
        assert!(Token::new(&"a".repeat(MIN_TOKEN_BYTES)).is_ok());
    }
}
