//! `GET /updates/{file}`: the release a hub stages for its branches, served from
//! `DATA_DIR/updates/` (a signed `manifest.json` and the builds it names; see
//! `branchd release sign`). Public: everything in it is signed, and branches verify it.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::Response;

use crate::error::ApiError;
use crate::state::AppState;

/// A plain file name: letters, digits, `.`, `_`, `-`, not starting with a dot.
fn safe(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

pub async fn file(State(st): State<AppState>, Path(name): Path<String>) -> Result<Response, ApiError> {
    if !safe(&name) {
        return Err(ApiError::not_found("no such update file"));
    }
    let path = st.config().data_dir.join("updates").join(&name);
    let f = tokio::fs::File::open(&path).await.map_err(|_| ApiError::not_found("no such update file"))?;
    let meta = f.metadata().await.map_err(|_| ApiError::not_found("no such update file"))?;
    if !meta.is_file() {
        return Err(ApiError::not_found("no such update file"));
    }
    let mut res = Response::new(Body::from_stream(tokio_util::io::ReaderStream::new(f)));
    let h = res.headers_mut();
    let mime = if name.ends_with(".json") { "application/json" } else { "application/octet-stream" };
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(meta.len()));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(res)
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_plain_names() {
        for ok in ["manifest.json", "branchd-0.2.0-aarch64-unknown-linux-gnu"] {
            assert!(super::safe(ok), "{ok}");
        }
        for bad in ["", "../jwt_secret", ".hidden", "a/b", "branchd.db\0", "%2e%2e"] {
            assert!(!super::safe(bad), "{bad}");
        }
    }
}
