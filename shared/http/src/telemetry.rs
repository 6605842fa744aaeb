//! Structured logs: JSON lines through `tracing`, filtered by `RUST_LOG` (default `info`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Installs the global subscriber once, writing to stdout; later calls do nothing. `json: false`
/// gives compact human output for the local runtime's terminal.
///
/// A Lambda writes each line before it answers (the sandbox may be frozen right after), so this
/// writes in the caller's thread.
pub fn init(json: bool) {
    init_with(json, std::io::stdout);
}

/// [`init`] with another writer of stdout: the local runtime's is a thread of its own.
pub fn init_with<W>(json: bool, writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(false);
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        // Colour codes only for a terminal, and never under NO_COLOR (https://no-color.org): a
        // file or a pipe gets plain lines, which are also cheaper to write.
        let colour = std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        builder.compact().with_ansi(colour).try_init()
    };
}
