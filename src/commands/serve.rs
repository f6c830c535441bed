//! `mlpipe serve HASH`: the REST API (see [`crate::server`]) on loopback unless told otherwise, until
//! SIGTERM or Ctrl-C; in-flight requests finish and every answered prediction is in the ledger first.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde::Serialize;

use crate::digest::Id;
use crate::error::{Error, Result};
use crate::ledger::{self, LedgerWriter};
use crate::scoring::Scorer;
use crate::server::{self, App, Limits};
use crate::store::LocalStore;

pub struct ServeArgs {
    pub run: String,
    pub shadow: Option<String>,
    pub addr: SocketAddr,
    /// Needed to bind an address other than loopback.
    pub public: bool,
    pub token_file: Option<PathBuf>,
    pub ledger: Option<String>,
    pub store: PathBuf,
    pub max_body: usize,
    pub body_timeout: std::time::Duration,
    pub threads: Option<usize>,
}

/// What the server is, once it listens.
#[derive(Debug, Serialize)]
pub struct Ready {
    pub addr: SocketAddr,
    pub run: Id,
    pub model: Id,
    pub shadow: Option<Id>,
    pub ledger: String,
}

#[derive(Debug, Serialize)]
pub struct ServeReport {
    pub predictions: u64,
}

fn read_token(path: &std::path::Path) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("read the token file", path, e))?;
    let token = text.trim().to_string();
    if token.is_empty() || token.chars().any(char::is_whitespace) {
        return Err(Error::data(format!(
            "the token file {} is empty or holds whitespace inside",
            path.display()
        ))
        .with_hint("write one token (for example 32 random hex characters) on one line"));
    }
    Ok(token)
}

pub fn run(args: &ServeArgs, on_ready: impl FnOnce(&Ready)) -> Result<ServeReport> {
    if !args.addr.ip().is_loopback() && !args.public {
        return Err(Error::data(format!(
            "{} is not a loopback address; serving beyond this machine must be asked for",
            args.addr
        ))
        .with_hint("pass --public (and consider --token-file), or bind 127.0.0.1"));
    }
    let token = args.token_file.as_deref().map(read_token).transpose()?;
    let store = LocalStore::open(&args.store)?;
    let (champion, shadow) = {
        let _lock = store.lock(false)?;
        let record = super::resolve_run(&store, &args.run)?;
        let champion = Scorer::load(&store, &record)?;
        let shadow = match &args.shadow {
            Some(hash) => Some(Scorer::load(&store, &super::resolve_run(&store, hash)?)?),
            None => None,
        };
        (champion, shadow)
    };
    let ledger = LedgerWriter::start(ledger::open(store.root(), args.ledger.as_deref())?);
    let ready = Ready {
        addr: args.addr,
        run: champion.run,
        model: champion.model,
        shadow: shadow.as_ref().map(|s| s.run),
        ledger: ledger.describe().to_string(),
    };
    let limits = Limits {
        max_body: args.max_body,
        body_timeout: args.body_timeout,
        ..Limits::default()
    };
    let app = Arc::new(App::new(champion, shadow, ledger, token, limits));
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        builder.worker_threads(n.max(1));
    }
    let runtime = builder
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.addr).await.map_err(|e| {
            Error::data(format!("cannot listen on {}: {e}", args.addr))
                .with_hint("choose another --addr (port 0 picks a free one)")
        })?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::internal(format!("cannot read the bound address: {e}")))?;
        on_ready(&Ready { addr, ..ready });
        serve_http1(
            listener,
            server::router(app.clone()),
            args.body_timeout,
            shutdown_signal(),
        )
        .await;
        Ok::<(), Error>(())
    })?;
    let predictions = app.metrics.predictions.load(Ordering::Relaxed);
    // Every answered prediction was committed before its answer; dropping the app closes the ledger.
    drop(app);
    Ok(ServeReport { predictions })
}

/// Serves `router` until `shutdown`, one HTTP/1 connection task per client, then lets every open
/// connection finish the request it is answering. Unlike `axum::serve`, every connection has a deadline
/// for its first byte and for each request's line and headers (hyper's `header_read_timeout`, which needs
/// the timer set here), so a client that never finishes its headers is cut off instead of holding a
/// connection and a file descriptor forever.
async fn serve_http1(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    deadline: std::time::Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    use axum::extract::ConnectInfo;
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, client) = tokio::select! {
            accepted = listener.accept() => {
                let Ok(accepted) = accepted else {
                    // Out of file descriptors or similar: back off instead of spinning; serving goes on.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                };
                accepted
            }
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service =
            hyper_util::service::TowerToHyperService::new(router.clone().layer(axum::Extension(ConnectInfo(client))));
        let mut stopping = stopping.clone();
        connections.spawn(async move {
            // A connection that sends nothing at all is closed at the deadline too.
            let mut first = [0u8; 1];
            if !matches!(tokio::time::timeout(deadline, stream.peek(&mut first)).await, Ok(Ok(n)) if n > 0) {
                return;
            }
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(deadline)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = stopping.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
        while connections.try_join_next().is_some() {}
    }
    let _ = stop.send(true);
    while connections.join_next().await.is_some() {}
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
