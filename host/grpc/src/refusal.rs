//! Telling a refusal from an outage: a TLS handshake failure or an
//! `UNAUTHENTICATED`/`PERMISSION_DENIED` status is
//! [`SourceError::Refused`] (retrying cannot help until the configuration
//! changes); anything else is a connect or status error.

use approval_host::sources::SourceError;
use tonic::{Code, Status};

/// Classifies a failed connect: a TLS handshake failure is a refusal
/// (retrying cannot help), anything else a connect error.
pub fn connect_error(endpoint: &str, error: &(dyn std::error::Error + 'static)) -> SourceError {
    let message = error_chain(error);
    if is_tls_failure(error) {
        SourceError::Refused {
            endpoint: endpoint.to_owned(),
            message,
        }
    } else {
        SourceError::Connect {
            endpoint: endpoint.to_owned(),
            message,
        }
    }
}

/// Classifies a gRPC status: credentials refused, or another gateway error.
pub fn status_error(endpoint: &str, status: &Status) -> SourceError {
    match status.code() {
        Code::Unauthenticated | Code::PermissionDenied => SourceError::Refused {
            endpoint: endpoint.to_owned(),
            message: status.to_string(),
        },
        // A TLS failure on an already lazily connected channel surfaces as
        // an `UNAVAILABLE` status whose source is the handshake error.
        _ if std::error::Error::source(status).is_some_and(is_tls_failure) => {
            SourceError::Refused {
                endpoint: endpoint.to_owned(),
                message: status.to_string(),
            }
        }
        _ => SourceError::Status(status.to_string()),
    }
}

/// Whether `rustls` failed somewhere in `error`'s source chain (also inside
/// an `io::Error`, where tokio-rustls puts it), or the peer ended the
/// connection with a fatal TLS alert. The alert is how a server refuses a
/// client that sent no certificate under TLS 1.3: the client's handshake has
/// already finished, and by the time the alert surfaces it has been turned
/// into text, so its text is what is left to recognise (rustls words it
/// "received fatal alert: ..."). When the server just closes the connection
/// instead, the attempt reads as a network fault; a later attempt usually
/// carries the alert.
fn is_tls_failure(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.is::<rustls::Error>() || e.to_string().contains("received fatal alert") {
            return true;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>())
        {
            return true;
        }
        next = e.source();
    }
    false
}

/// `error` and its sources, joined, for a log line.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut next = error.source();
    while let Some(e) = next {
        out.push_str(": ");
        out.push_str(&e.to_string());
        next = e.source();
    }
    out
}
