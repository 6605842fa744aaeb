//! The `amanar-local` binary as a user runs it: it prints where it listens, serves, and stops cleanly
//! on SIGTERM with its data intact.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The binary on embedded defaults in `data_dir`, on a free loopback port, stdout piped.
fn spawn(data_dir: &std::path::Path, rust_log: &str) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_amanar-local"))
        .args([
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--addr",
            "127.0.0.1:0",
        ])
        .env("RUST_LOG", rust_log)
        .env_remove("AMANAR_TABLE_BACKEND")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

fn start(data_dir: &std::path::Path) -> (std::process::Child, String) {
    let mut child = spawn(data_dir, "warn");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let address = line
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    assert!(
        line.starts_with("amanar-local listening on http://127.0.0.1:"),
        "{line}"
    );
    (child, address)
}

fn terminate(child: &mut std::process::Child) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    for _ in 0..100 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().ok();
    panic!("amanar-local did not stop within 10 s of SIGTERM");
}

#[tokio::test]
async fn the_binary_serves_until_sigterm_and_exits_cleanly_keeping_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, address) = start(dir.path());
    let health = reqwest::get(format!("{address}/v1/health")).await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(terminate(&mut child).success(), "a clean exit");
    assert!(
        dir.path().join("amanar.redb").exists(),
        "data lives in the data directory"
    );

    let (mut child, address) = start(dir.path());
    assert_eq!(
        reqwest::get(format!("{address}/v1/health"))
            .await
            .unwrap()
            .status(),
        200,
        "restarts on the same data"
    );
    assert!(terminate(&mut child).success());
}

#[test]
fn a_malformed_setting_stops_start_up_naming_the_variable() {
    let output = Command::new(env!("CARGO_BIN_EXE_amanar-local"))
        .env("AMANAR_TABLE_BACKEND", "postgres")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("AMANAR_TABLE_BACKEND"), "{stderr}");
}

/// Log lines go through a writer thread (main.rs); the last of them still reach stdout at exit.
#[tokio::test]
async fn log_lines_reach_stdout_and_the_last_are_flushed_at_a_clean_exit() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn(dir.path(), "info");
    let (lines, received) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let address = loop {
        let line = received
            .recv_timeout(Duration::from_secs(30))
            .expect("amanar-local prints where it listens");
        if let Some(rest) = line.strip_prefix("amanar-local listening on ") {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    let health = reqwest::get(format!("{address}/v1/health")).await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(terminate(&mut child).success());
    let rest: Vec<String> = received.iter().collect();
    assert!(
        rest.iter()
            .any(|l| l.contains("served") && l.contains("/v1/health")),
        "the request's line: {rest:#?}"
    );
    assert!(
        rest.last().is_some_and(|l| l.contains("stopped")),
        "the last line, written just before exit: {rest:#?}"
    );
}
