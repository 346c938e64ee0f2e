//! Bearer tokens on every call: `authorization: Bearer <token>`.

use approval_host::sources::SourceError;
use tonic::Status;
use tonic::metadata::{Ascii, MetadataValue};

/// `authorization: Bearer <token>` metadata, checked once so a token with
/// bytes HTTP forbids is a typed error, not a panic.
pub fn bearer(token: &str) -> Result<MetadataValue<Ascii>, SourceError> {
    format!("Bearer {token}")
        .parse()
        .map_err(|_| SourceError::Refused {
            endpoint: String::new(),
            message: "the token is not valid HTTP header text".into(),
        })
}

/// Adds `authorization: Bearer ...` to every call of a client.
#[derive(Clone, Default)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Bearer {
    /// Sends `token` (checked once: a token with bytes HTTP forbids is a
    /// typed error), or nothing.
    pub fn new(token: Option<&str>) -> Result<Self, SourceError> {
        Ok(Bearer(token.map(bearer).transpose()?))
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        if let Some(token) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", token.clone());
        }
        Ok(request)
    }
}
