//! Black-box tests of the emulator over real HTTP (one test binary, several
//! modules, to keep link time low).

// The shared helpers unwrap too: any failure here is a test failure.
#![allow(clippy::unwrap_used)]

mod binary;
mod bot_api;
mod chats;
mod commands;
mod control;
mod descriptions;
mod keyboards;
mod media_group;
mod teloxide_compat;
mod video;
mod webhook;

use std::time::Duration;

use serde_json::Value;
use tg_emulator::{Emulator, EmulatorConfig, EmulatorHandle};

/// An emulator on a free port with fast webhook retries.
pub async fn start() -> EmulatorHandle {
    let config = EmulatorConfig {
        webhook_initial_backoff: Duration::from_millis(50),
        webhook_max_backoff: Duration::from_millis(400),
        webhook_timeout: Duration::from_secs(2),
        ..EmulatorConfig::default()
    };
    Emulator::start_with_config("127.0.0.1:0", config)
        .await
        .expect("emulator starts")
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client builds")
}

/// Calls a Bot API method with a JSON body; returns (HTTP status, body).
pub async fn call(emu: &EmulatorHandle, method: &str, params: Value) -> (u16, Value) {
    let response = http()
        .post(emu.method_url(method))
        .json(&params)
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    let body = response.json().await.expect("JSON body");
    (status, body)
}

/// Calls a method that must succeed and returns its `result`.
pub async fn ok(emu: &EmulatorHandle, method: &str, params: Value) -> Value {
    let (status, body) = call(emu, method, params).await;
    assert_eq!(status, 200, "{method} failed: {body}");
    assert_eq!(body["ok"], true, "{body}");
    body["result"].clone()
}

pub fn jpeg(width: u32, height: u32) -> Vec<u8> {
    tg_emulator::test_jpeg(width, height)
}
