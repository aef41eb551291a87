//! The `tg-emulator` binary starts, prints its address and serves the API.

use std::{process::Stdio, time::Duration};

use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test]
async fn binary_prints_its_address_and_serves_the_bot_api() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tg-emulator"))
        .args(["--listen", "127.0.0.1:0", "--token", "42:BINARY"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("address printed in time")
        .expect("stdout readable")
        .expect("a line");
    let base = line
        .strip_prefix("tg-emulator listening on ")
        .expect("announcement line")
        .to_owned();
    let client = tg_emulator::EmulatorClient::new(base.clone());
    client
        .wait_until_ready(Duration::from_secs(5))
        .await
        .unwrap();
    let me: serde_json::Value = crate::http()
        .get(format!("{base}/bot42:BINARY/getMe"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["result"]["id"], 42);
    child.kill().await.unwrap();
}
