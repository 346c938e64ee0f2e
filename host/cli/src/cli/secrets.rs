//! Files that hold secrets (reviewer keys, bearer tokens): created readable
//! by their owner only, in directories only their owner can enter, and
//! never written over.

use anyhow::Context;
use std::io::Write;
use std::path::Path;

/// Creates `dir` (and its missing parents) with mode 0700 when missing.
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}

/// Creates `path` with mode 0600 holding `bytes`; refuses an existing file
/// (a secret is never overwritten).
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| {
        format!(
            "creating {} (an existing secret is never overwritten)",
            path.display()
        )
    })?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    if let Err(e) = written {
        // Ours (created exclusively above): no half-written secret stays.
        let _ = std::fs::remove_file(path);
        return Err(e).with_context(|| format!("writing {}", path.display()));
    }
    Ok(())
}
