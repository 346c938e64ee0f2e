//! [`ReaderSource`]: frames from any `AsyncRead`.

use super::{Chunk, Chunks, EventSource, OpenRequest, SourceError};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Bytes read per chunk (many frames per guest call).
pub(crate) const CHUNK: usize = 64 * 1024;

/// Length-delimited frames read from an `AsyncRead` (stdin, a file, a
/// socket). Frames may straddle reads; the guest reassembles them. A reader
/// cannot be rewound, so this source is read once and never reopened.
pub struct ReaderSource<R> {
    reader: Option<R>,
    name: String,
}

impl<R: AsyncRead + Send + Unpin + 'static> ReaderSource<R> {
    /// A source over `reader`; `name` appears in logs.
    pub fn new(reader: R, name: impl Into<String>) -> Self {
        ReaderSource {
            reader: Some(reader),
            name: name.into(),
        }
    }
}

impl<R: AsyncRead + Send + Unpin + 'static> EventSource for ReaderSource<R> {
    fn open(&mut self, _request: OpenRequest) -> BoxFuture<'_, Result<Chunks, SourceError>> {
        let reader = self.reader.take();
        async move {
            let reader = reader.ok_or(SourceError::Exhausted)?;
            let chunks = futures::stream::unfold(Some(reader), |reader| async move {
                let mut reader = reader?;
                let mut buf = vec![0; CHUNK];
                match reader.read(&mut buf).await {
                    Ok(0) => None,
                    Ok(n) => {
                        buf.truncate(n);
                        Some((Ok(Chunk::from(buf)), Some(reader)))
                    }
                    Err(e) => Some((Err(SourceError::Io(e)), None)),
                }
            });
            Ok(chunks.boxed())
        }
        .boxed()
    }

    fn reopens(&self) -> bool {
        false
    }

    fn describe(&self) -> String {
        format!("reader {}", self.name)
    }
}
