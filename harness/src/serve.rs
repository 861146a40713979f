//! `gpaxos-harness serve`: the store over HTTP, for browsing reports with a
//! browser. Read-only, GET only, paths confined to the store.

use anyhow::{Context, Result};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Component, Path, PathBuf};

fn content_type(p: &Path) -> &'static str {
    match p.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        _ => "text/plain; charset=utf-8",
    }
}

/// The file or listing for a request path, inside `root` only.
fn resolve(root: &Path, url: &str) -> Option<PathBuf> {
    let path = url.split(['?', '#']).next().unwrap_or("/");
    let mut out = root.to_path_buf();
    for c in Path::new(path.trim_start_matches('/')).components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

fn listing(dir: &Path, url: &str) -> String {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    let mut n = e.file_name().to_string_lossy().into_owned();
                    if e.path().is_dir() {
                        n.push('/');
                    }
                    n
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let base = if url.ends_with('/') {
        url.to_owned()
    } else {
        format!("{url}/")
    };
    let items: String = names
        .iter()
        .map(|n| format!("<li><a href=\"{base}{n}\">{n}</a></li>"))
        .collect();
    format!("<!doctype html><meta charset=utf-8><title>{url}</title><h1>{url}</h1><ul>{items}</ul>")
}

pub fn serve(store: &Path, port: u16) -> Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .with_context(|| format!("binding 127.0.0.1:{port}"))?;
    println!("serving {} at http://127.0.0.1:{port}/", store.display());
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let mut line = String::new();
        if BufReader::new(&stream).read_line(&mut line).is_err() {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (method, url) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
        let (status, ctype, body): (&str, &str, Vec<u8>) = match (method, resolve(store, url)) {
            ("GET", Some(p)) if p.is_dir() => {
                let index = p.join("report.html");
                if index.is_file() && !url.ends_with('/') {
                    (
                        "200 OK",
                        "text/html; charset=utf-8",
                        std::fs::read(index).unwrap_or_default(),
                    )
                } else {
                    (
                        "200 OK",
                        "text/html; charset=utf-8",
                        listing(&p, url).into_bytes(),
                    )
                }
            }
            ("GET", Some(p)) if p.is_file() => (
                "200 OK",
                content_type(&p),
                std::fs::read(&p).unwrap_or_default(),
            ),
            ("GET", _) => ("404 Not Found", "text/plain", b"not found".to_vec()),
            _ => ("405 Method Not Allowed", "text/plain", b"GET only".to_vec()),
        };
        let _ = write!(
            stream,
            "HTTP/1.0 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let _ = stream.write_all(&body);
    }
    Ok(())
}
