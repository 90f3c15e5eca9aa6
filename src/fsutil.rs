//! Durable file writes shared by `ops` and `secrets`: a file replaced atomically, and a
//! directory entry change flushed to disk. Plain `std::fs`; imports nothing of the crate.

/// Writes `bytes` to `path` through a temporary file in the same directory, flushed and
/// renamed over, so that readers see the old or the new content, never a part.
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    sync_dir(dir);
    Ok(())
}

/// Flushes a directory entry change (rename, create) to disk; best effort.
pub fn sync_dir(dir: &std::path::Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}
