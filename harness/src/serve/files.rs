//! The store's files and directories, by request path: confined to the
//! store, each file with its content type, each directory as a listing.

use super::page::escape;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::path::{Component, Path, PathBuf};

/// What a path segment keeps unescaped in a link.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A file name as one segment of a link.
pub fn href_segment(name: &str) -> String {
    utf8_percent_encode(name, SEGMENT).to_string()
}

/// The content type of a file the runs hold, by its extension.
pub fn content_type(p: &Path) -> &'static str {
    match p.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("jsonl") => "application/x-ndjson",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("log" | "txt" | "edn" | "toml" | "pem" | "csv") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The real path of the request path `raw` (as sent, percent-encoded)
/// inside `root`. A `..`, an absolute path or a NUL byte is refused (400);
/// a path that does not exist, or whose symlinks lead out of the store, is
/// not found (404).
pub fn resolve(root: &Path, raw: &str) -> Result<PathBuf, StatusCode> {
    let decoded = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| StatusCode::BAD_REQUEST)?;
    if decoded.contains('\0') {
        return Err(StatusCode::BAD_REQUEST);
    }
    let mut out = root.to_path_buf();
    for c in Path::new(decoded.trim_start_matches('/')).components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return Err(StatusCode::BAD_REQUEST),
        }
    }
    let real = out.canonicalize().map_err(|_| StatusCode::NOT_FOUND)?;
    let real_root = root.canonicalize().map_err(|_| StatusCode::NOT_FOUND)?;
    if real.starts_with(&real_root) {
        Ok(real)
    } else {
        Err(StatusCode::NOT_FOUND)
    }
}

/// The answer to a GET of `raw`: the file, the directory's listing, a
/// redirect to the directory's own URL (so relative links in it work), or
/// the refusal.
pub fn answer(root: &Path, raw: &str) -> Response {
    let path = match resolve(root, raw) {
        Ok(p) => p,
        Err(status) => return (status, status.canonical_reason().unwrap_or("")).into_response(),
    };
    if path.is_dir() {
        if !raw.ends_with('/') {
            return Redirect::permanent(&format!("{raw}/")).into_response();
        }
        return Html(listing(&path, raw)).into_response();
    }
    match std::fs::read(&path) {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, content_type(&path)),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                // A run in progress grows: always ask again.
                (header::CACHE_CONTROL, "no-cache"),
            ],
            body,
        )
            .into_response(),
        Err(e) => (StatusCode::NOT_FOUND, e.to_string()).into_response(),
    }
}

/// A directory's entries, directories first, as links.
fn listing(dir: &Path, raw: &str) -> String {
    let mut entries: Vec<(bool, String)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    (
                        !e.path().is_dir(),
                        e.file_name().to_string_lossy().into_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    entries.sort();
    let title = escape(&percent_decode_str(raw).decode_utf8_lossy());
    let items: String = entries
        .iter()
        .map(|(file, name)| {
            let slash = if *file { "" } else { "/" };
            format!(
                "<li><a href=\"{}{slash}\">{}{slash}</a></li>",
                href_segment(name),
                escape(name)
            )
        })
        .collect();
    format!(
        "<!doctype html><meta charset=utf-8><title>{title}</title>\
         <p><a href=\"/\">all runs</a></p><h1>{title}</h1>\
         <ul><li><a href=\"../\">../</a></li>{items}</ul>"
    )
}
