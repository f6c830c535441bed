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
use crate::predictor::Scorer;
use crate::server::{self, App, Limits};
use crate::store::LocalStore;

pub struct ServeArgs {
    pub run: String,
    pub shadow: Option<String>,
    pub addr: SocketAddr,
    /// Needed to bind an address other than loopback.
    pub public: bool,
    /// The bearer token given directly (`--token` or `MLPIPE_TOKEN`).
    pub token: Option<String>,
    /// A file holding the bearer token (`--token-file`).
    pub token_file: Option<PathBuf>,
    /// With `public`: serve without a token, on purpose.
    pub allow_anonymous: bool,
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
    /// Whether requests must carry the bearer token.
    pub token: bool,
}

#[derive(Debug, Serialize)]
pub struct ServeReport {
    pub predictions: u64,
}

/// Checks a token: one or more visible ASCII characters (what an `Authorization` header can carry), so a
/// token that no request could ever match is refused at start. Messages never show the token.
fn check_token(token: String, from: &str) -> Result<String> {
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::data(format!(
            "the token from {from} is empty or holds a space or a character that is not visible ASCII"
        ))
        .with_hint(
            "use one word of visible ASCII characters, for example 32 random hex characters (openssl rand -hex 16)",
        ));
    }
    Ok(token)
}

fn read_token(path: &std::path::Path) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("read the token file", path, e))?;
    check_token(text.trim().to_string(), &format!("the token file {}", path.display()))
}

/// The bearer token from `--token` / `MLPIPE_TOKEN` or `--token-file` (one of them), and whether serving
/// without one is allowed: never on a public address unless `--allow-anonymous` says so.
fn resolve_token(args: &ServeArgs) -> Result<Option<String>> {
    let token = match (&args.token, &args.token_file) {
        (Some(_), Some(_)) => {
            return Err(
                Error::data("a token is given twice: by --token or MLPIPE_TOKEN, and by --token-file")
                    .with_hint("give one: --token-file FILE, or MLPIPE_TOKEN (unset it to use --token-file)"),
            );
        }
        (Some(token), None) => Some(check_token(token.clone(), "--token or MLPIPE_TOKEN")?),
        (None, Some(path)) => Some(read_token(path)?),
        (None, None) => None,
    };
    if args.public && token.is_none() && !args.allow_anonymous {
        return Err(Error::data(
            "--public without a token would let anyone who can reach this address predict, read the model \
             and its metrics, and fill the ledger",
        )
        .with_hint(
            "give a bearer token with MLPIPE_TOKEN or --token-file FILE (or --token, which other users of this \
             machine can see in the process list), or pass --allow-anonymous to serve without one",
        ));
    }
    Ok(token)
}

pub fn run(args: &ServeArgs, on_ready: impl FnOnce(&Ready)) -> Result<ServeReport> {
    if !args.addr.ip().is_loopback() && !args.public {
        return Err(Error::data(format!(
            "{} is not a loopback address; serving beyond this machine must be asked for",
            args.addr
        ))
        .with_hint("pass --public (with a token: MLPIPE_TOKEN or --token-file), or bind 127.0.0.1"));
    }
    let token = resolve_token(args)?;
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
        token: token.is_some(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(
        public: bool,
        token: Option<&str>,
        token_file: Option<&std::path::Path>,
        allow_anonymous: bool,
    ) -> ServeArgs {
        ServeArgs {
            run: "ab".into(),
            shadow: None,
            addr: "0.0.0.0:0".parse().unwrap(),
            public,
            token: token.map(str::to_string),
            token_file: token_file.map(std::path::Path::to_path_buf),
            allow_anonymous,
            ledger: None,
            store: "artifacts".into(),
            max_body: 1 << 20,
            body_timeout: std::time::Duration::from_secs(10),
            threads: None,
        }
    }

    fn refusal(a: &ServeArgs) -> (String, String) {
        let e = resolve_token(a).err().unwrap();
        (e.to_string(), e.hint().unwrap_or_default())
    }

    #[test]
    fn serve_public_without_a_token_is_refused_unless_anonymous_is_asked_for() {
        let (message, hint) = refusal(&args(true, None, None, false));
        assert_eq!(
            message,
            "--public without a token would let anyone who can reach this address predict, read the model and \
             its metrics, and fill the ledger"
        );
        assert_eq!(
            hint,
            "give a bearer token with MLPIPE_TOKEN or --token-file FILE (or --token, which other users of this \
             machine can see in the process list), or pass --allow-anonymous to serve without one"
        );
        assert_eq!(resolve_token(&args(true, None, None, true)).unwrap(), None);
        assert_eq!(
            resolve_token(&args(false, None, None, false)).unwrap(),
            None,
            "loopback needs no token"
        );
        assert_eq!(
            resolve_token(&args(true, Some("s3cr3t"), None, false))
                .unwrap()
                .as_deref(),
            Some("s3cr3t")
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "from-file\n").unwrap();
        assert_eq!(
            resolve_token(&args(true, None, Some(&file), false)).unwrap().as_deref(),
            Some("from-file")
        );
        let (message, _) = refusal(&args(true, Some("a"), Some(&file), false));
        assert_eq!(
            message,
            "a token is given twice: by --token or MLPIPE_TOKEN, and by --token-file"
        );
    }

    #[test]
    fn a_token_no_request_could_carry_is_refused_without_being_shown() {
        for bad in ["", "two words", "tab\there", "caf\u{e9}"] {
            let (message, _) = refusal(&args(true, Some(bad), None, false));
            assert_eq!(
                message,
                "the token from --token or MLPIPE_TOKEN is empty or holds a space or a character that is not \
                 visible ASCII"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "  \n").unwrap();
        let (message, _) = refusal(&args(false, None, Some(&file), false));
        assert_eq!(
            message,
            format!(
                "the token from the token file {} is empty or holds a space or a character that is not visible ASCII",
                file.display()
            )
        );
    }
}
