//! Not deployed. `local serve` runs every router in one axum server on PORT (default 3000) for
//! scripts/dev and scripts/test; `local migrate` applies the migrations and exits.

use shared::http::{app, Group};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() {
    shared::telemetry::init();
    if let Err(err) = run().await {
        eprintln!("error: {err}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), BoxError> {
    let command = std::env::args().nth(1).unwrap_or_else(|| "serve".into());
    let state = shared::AppState::from_env()?;
    match command.as_str() {
        "migrate" => {
            let applied = shared::db::migrate(&mut state.db().get().await?).await?;
            tracing::info!(applied, "migrations up to date");
            Ok(())
        }
        "serve" => serve(state).await,
        other => Err(format!("unknown command {other:?}; use serve or migrate").into()),
    }
}

async fn serve(state: shared::AppState) -> Result<(), BoxError> {
    let port: u16 = match std::env::var("PORT") {
        Ok(raw) => raw
            .parse()
            .map_err(|_| format!("PORT is malformed: {raw:?}"))?,
        Err(_) => 3000,
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    tracing::info!("serving the whole API on http://127.0.0.1:{port}");
    axum::serve(listener, app(state, &Group::ALL))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
