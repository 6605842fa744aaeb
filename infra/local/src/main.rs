//! `amanar-local`: the whole platform in one process on embedded defaults.

use std::path::PathBuf;

use amanar_app::{Config, Face};
use clap::Parser;

/// Runs every AmanarCarbon endpoint, job, trigger and schedule locally, with durable data and no
/// network. Every other setting is an AMANAR_* environment variable (see the README).
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Directory holding all data (created if missing).
    #[arg(long, env = "AMANAR_DATA_DIR", default_value = ".amanar")]
    data_dir: PathBuf,
    /// Address to listen on. Loopback only, unless `--expose`.
    #[arg(long, env = "AMANAR_ADDR", default_value = "127.0.0.1:3000")]
    addr: std::net::SocketAddr,
    /// Allow a non-loopback address. The mailbox (`/_local/mailbox`, with every verification and
    /// reset code) then needs the token printed at start, as `X-Local-Token`.
    #[arg(long)]
    expose: bool,
    /// Load the demo catalogue (real registry projects and serial blocks at demo prices) before
    /// serving; a second start with it changes nothing.
    #[arg(long)]
    demo: bool,
}

async fn terminated() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("SIGTERM handler");
        tokio::select! { _ = interrupt => {}, _ = terminate.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let config = match Config::from_env(Face::Local) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("amanar-local: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    // Log lines are written by a thread of their own, so a request never waits on the terminal
    // or the pipe (BENCHMARKS.md, "The request path under wrk"). A full buffer makes the logging
    // request wait, as a direct write would, rather than drop a line. The guard outlives the
    // Tokio runtime, so the lines of its last tasks are written too; at exit it waits up to a
    // second for the writer to catch up.
    let (log_writer, _log_guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("amanar-log")
        .finish(std::io::stdout());
    amanar_http::telemetry::init_with(config.json_logs, log_writer);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the Tokio runtime starts");
    let code = runtime.block_on(serve(args, config));
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    code
}

async fn serve(args: Args, mut config: Config) -> std::process::ExitCode {
    // Flags win over the environment; the public URL follows the address unless set explicitly.
    if let amanar_app::config::BlobBackend::Local { public_url } = &mut config.blobs
        && std::env::var(amanar_app::config::vars::PUBLIC_URL).is_err()
    {
        *public_url = format!("http://{}", args.addr);
    }
    config.data_dir = args.data_dir;
    config.addr = args.addr;
    config.expose |= args.expose;
    let buffer = config.buffer_policy.clone();
    let mut running = match amanar_local::start(config).await {
        Ok(running) => running,
        Err(error) => {
            eprintln!("amanar-local: {error}");
            return std::process::ExitCode::from(1);
        }
    };
    println!(
        "amanar-local listening on http://{} (API docs at http://{}/docs)",
        running.addr, running.addr
    );
    if args.demo {
        let ports = running.ports();
        match amanar_marketplace::demo::seed(ports.table.clone(), &buffer, ports.clock.now()).await
        {
            Ok(seeded) => println!(
                "demo catalogue: {} projects, {} issuances, {} listings (GET /v1/projects)",
                seeded.projects, seeded.issuances, seeded.listings
            ),
            Err(error) => {
                eprintln!("amanar-local: the demo catalogue: {error}");
                running.shutdown().await;
                return std::process::ExitCode::from(1);
            }
        }
    }
    if let Some(token) = &running.local_token {
        println!("the mailbox (/_local/mailbox) needs the header X-Local-Token: {token}");
    }
    tokio::select! {
        _ = terminated() => {
            tracing::info!("shutting down");
            running.shutdown().await;
            tracing::info!("stopped");
            std::process::ExitCode::SUCCESS
        }
        _ = running.wait_stopped() => std::process::ExitCode::from(1),
    }
}
