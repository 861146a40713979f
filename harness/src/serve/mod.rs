//! `gpaxos-harness serve`: the store over HTTP, for browsing runs with a
//! browser. The index is a table of the runs (`runs`, `page`); every other
//! path is a file or directory of the store (`files`). Read-only, GET and
//! HEAD only, paths confined to the store.
//!
//! Each connection is a task of its own, so a client that connects and
//! sends nothing, or sends slowly, holds only its own connection, and hyper
//! closes it when its request head has not arrived within
//! `Limits::header_read` (idle keep-alive connections included). A request
//! whose answer takes longer than `Limits::request` gets 408.

pub mod files;
pub mod page;
pub mod runs;

use anyhow::{Context, Result};
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tower_http::timeout::TimeoutLayer;

/// How long a client may take.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// From a connection's start, or the end of its last response, to the
    /// end of its next request head; then the connection is closed.
    pub header_read: Duration,
    /// From a request's head to its response; then 408.
    pub request: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read: Duration::from_secs(10),
            request: Duration::from_secs(30),
        }
    }
}

/// Serves `store` on 127.0.0.1:`port` until the process is stopped.
pub fn serve(store: &Path, port: u16) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .with_context(|| format!("binding 127.0.0.1:{port}"))?;
        println!("serving {} at http://127.0.0.1:{port}/", store.display());
        run(listener, store.to_owned(), Limits::default()).await
    })
}

/// The routes: the table of runs at `/`, the store's files elsewhere.
pub fn router(store: PathBuf, limits: Limits) -> Router {
    Router::new()
        .route("/", get(index))
        .fallback(get(file))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request,
        ))
        .with_state(Arc::new(store))
}

/// Accepts connections on `listener` for ever, each served by a task of
/// its own.
pub async fn run(listener: TcpListener, store: PathBuf, limits: Limits) -> Result<()> {
    let app = router(store, limits);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, say: wait for some to close
                // rather than spin.
                tracing::warn!("serve: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(limits.header_read);
            if let Err(e) = http.serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!("serve: connection ended: {e}");
            }
        });
    }
}

async fn index(State(store): State<Arc<PathBuf>>) -> Response {
    // Reading every run's summary is file I/O: off the async threads.
    let scanned = tokio::task::spawn_blocking(move || runs::scan(&store)).await;
    match scanned {
        Ok(runs) => Html(page::table(&runs)).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn file(State(store): State<Arc<PathBuf>>, uri: Uri) -> Response {
    let store = Arc::clone(&store);
    let answered = tokio::task::spawn_blocking(move || files::answer(&store, uri.path())).await;
    answered.unwrap_or_else(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response())
}
