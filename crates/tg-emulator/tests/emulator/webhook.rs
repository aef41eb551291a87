//! Webhook delivery: secret header, retries with backoff, delivery records.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, http::HeaderMap, http::StatusCode, routing::post};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::{call, ok, start};

/// What a test webhook server saw: (secret header, body) per request.
type Seen = Arc<Mutex<Vec<(Option<String>, Value)>>>;

/// A webhook server that answers the given statuses in turn (then 200).
async fn webhook_server(listener: TcpListener, statuses: Vec<u16>) -> Seen {
    let seen: Seen = Arc::default();
    let statuses = Arc::new(Mutex::new(statuses.into_iter()));
    let app = Router::new().route(
        "/hook",
        post({
            let seen = seen.clone();
            move |headers: HeaderMap, body: axum::Json<Value>| async move {
                let secret = headers
                    .get(tg_emulator::SECRET_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                seen.lock().unwrap().push((secret, body.0));
                let status = statuses.lock().unwrap().next().unwrap_or(200);
                StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    seen
}

#[tokio::test]
async fn webhook_delivery_carries_the_secret_header_and_retries_after_a_500() {
    let emu = start().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen = webhook_server(listener, vec![500]).await;

    let set = call(
        &emu,
        "setWebhook",
        json!({"url": url, "secret_token": "s3cr3t_-X", "allowed_updates": ["message"]}),
    )
    .await;
    assert_eq!(
        set.1,
        json!({"ok": true, "result": true, "description": "Webhook was set"})
    );
    let queued = emu.client().send_user_text(12, "hello hook").await.unwrap();

    let deliveries = emu
        .client()
        .wait_for_deliveries(Duration::from_secs(5), |d| d.iter().any(|a| a.delivered))
        .await
        .unwrap();
    assert_eq!(deliveries.len(), 2);
    assert_eq!(
        (
            deliveries[0].attempt,
            deliveries[0].status,
            deliveries[0].delivered
        ),
        (1, Some(500), false)
    );
    assert_eq!(
        (
            deliveries[1].attempt,
            deliveries[1].status,
            deliveries[1].delivered
        ),
        (2, Some(200), true)
    );
    assert!(
        deliveries
            .iter()
            .all(|d| d.update_id == queued.update_id && d.secret_token_sent)
    );
    assert!(
        deliveries[1].at_ms >= deliveries[0].at_ms + 40,
        "retried after a backoff"
    );

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    for (secret, body) in &seen {
        assert_eq!(secret.as_deref(), Some("s3cr3t_-X"));
        assert_eq!(body, &queued.update);
    }

    let info = ok(&emu, "getWebhookInfo", json!({})).await;
    assert_eq!(info["url"], url.as_str());
    assert_eq!(info["pending_update_count"], 0);
    assert_eq!(
        info["last_error_message"],
        "Wrong response from the webhook: 500 Internal Server Error"
    );
    let state = emu.client().webhook().await.unwrap();
    assert_eq!(state.secret_token.as_deref(), Some("s3cr3t_-X"));
    assert_eq!(state.allowed_updates, Some(vec!["message".to_owned()]));
}

#[tokio::test]
async fn webhook_without_secret_sends_no_header_and_keeps_update_order() {
    let emu = start().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen = webhook_server(listener, vec![]).await;
    ok(&emu, "setWebhook", json!({"url": url})).await;
    for text in ["a", "b", "c"] {
        emu.client().send_user_text(1, text).await.unwrap();
    }
    emu.client()
        .wait_for_deliveries(Duration::from_secs(5), |d| {
            d.iter().filter(|a| a.delivered).count() == 3
        })
        .await
        .unwrap();
    let seen = seen.lock().unwrap().clone();
    let texts: Vec<&str> = seen
        .iter()
        .map(|(_, b)| b["message"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["a", "b", "c"]);
    assert!(seen.iter().all(|(secret, _)| secret.is_none()));
}

#[tokio::test]
async fn webhook_connection_errors_are_retried_until_the_server_is_up() {
    let emu = start().await;
    // Reserve a port, then close it so the first attempts are refused.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/hook");
    ok(&emu, "setWebhook", json!({"url": url})).await;
    let queued = emu.client().send_user_text(1, "late").await.unwrap();
    emu.client()
        .wait_for_deliveries(Duration::from_secs(5), |d| d.len() >= 2)
        .await
        .unwrap();
    let info = ok(&emu, "getWebhookInfo", json!({})).await;
    assert!(
        info["last_error_message"]
            .as_str()
            .unwrap()
            .starts_with("Connection refused"),
        "{info}"
    );
    assert_eq!(info["pending_update_count"], 1);

    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let seen = webhook_server(listener, vec![]).await;
    let deliveries = emu
        .client()
        .wait_for_deliveries(Duration::from_secs(5), |d| d.iter().any(|a| a.delivered))
        .await
        .unwrap();
    assert!(
        deliveries
            .iter()
            .filter(|d| !d.delivered)
            .all(|d| d.error.is_some() && d.status.is_none())
    );
    assert_eq!(seen.lock().unwrap()[0].1, queued.update);
}

#[tokio::test]
async fn redeliver_posts_a_duplicate_to_the_webhook() {
    let emu = start().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen = webhook_server(listener, vec![]).await;
    ok(&emu, "setWebhook", json!({"url": url})).await;
    let queued = emu.client().send_user_text(1, "once").await.unwrap();
    emu.client()
        .wait_for_deliveries(Duration::from_secs(5), |d| d.len() == 1)
        .await
        .unwrap();
    emu.client().redeliver(queued.update_id).await.unwrap();
    emu.client()
        .wait_for_deliveries(Duration::from_secs(5), |d| d.len() == 2)
        .await
        .unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[0].1, seen[1].1);
}

#[tokio::test]
async fn set_and_delete_webhook_answer_like_telegram() {
    let emu = start().await;
    let (status, body) = call(
        &emu,
        "setWebhook",
        json!({"url": "http://127.0.0.1:9/x", "secret_token": "bad secret!"}),
    )
    .await;
    assert_eq!(
        (status, body["description"].as_str()),
        (
            400,
            Some("Bad Request: secret token contains unallowed characters")
        )
    );
    let (status, _) = call(&emu, "setWebhook", json!({"url": "ftp://example/x"})).await;
    assert_eq!(status, 400);
    let (_, body) = call(&emu, "deleteWebhook", json!({})).await;
    assert_eq!(body["description"], "Webhook is already deleted");
    let info = ok(&emu, "getWebhookInfo", json!({})).await;
    assert_eq!(
        info,
        json!({"url": "", "has_custom_certificate": false, "pending_update_count": 0})
    );
    ok(&emu, "setWebhook", json!({"url": "http://127.0.0.1:9/x"})).await;
    let (_, body) = call(&emu, "setWebhook", json!({"url": "http://127.0.0.1:9/x"})).await;
    assert_eq!(body["description"], "Webhook is already set");
    let (_, body) = call(&emu, "deleteWebhook", json!({"drop_pending_updates": true})).await;
    assert_eq!(body["description"], "Webhook was deleted");
    tokio::time::sleep(Duration::from_millis(10)).await;
}

/// A webhook server that holds each request `hold` long and records the
/// most requests it had at once, overall and per chat.
async fn slow_server(listener: TcpListener, hold: Duration) -> Arc<Mutex<(usize, usize, usize)>> {
    // (current, max overall, max in one chat at once)
    let stats: Arc<Mutex<(usize, usize, usize)>> = Arc::default();
    let per_chat: Arc<Mutex<std::collections::HashMap<i64, usize>>> = Arc::default();
    let app = Router::new().route(
        "/hook",
        post({
            let stats = stats.clone();
            move |body: axum::Json<Value>| async move {
                let chat = body.0["message"]["chat"]["id"].as_i64().unwrap_or(0);
                {
                    let mut s = stats.lock().unwrap();
                    s.0 += 1;
                    s.1 = s.1.max(s.0);
                    let mut c = per_chat.lock().unwrap();
                    let n = c.entry(chat).or_default();
                    *n += 1;
                    s.2 = s.2.max(*n);
                }
                tokio::time::sleep(hold).await;
                stats.lock().unwrap().0 -= 1;
                *per_chat.lock().unwrap().entry(chat).or_default() -= 1;
                StatusCode::OK
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    stats
}

#[tokio::test]
async fn webhook_deliveries_run_in_parallel_up_to_max_connections_one_at_a_time_per_chat() {
    let emu = start().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let stats = slow_server(listener, Duration::from_millis(300)).await;
    ok(
        &emu,
        "setWebhook",
        json!({"url": url, "max_connections": 4}),
    )
    .await;
    for chat in 1..=8 {
        emu.client().send_user_text(chat, "one").await.unwrap();
    }
    for _ in 0..3 {
        emu.client().send_user_text(1, "same chat").await.unwrap();
    }
    emu.client()
        .wait_for_deliveries(Duration::from_secs(20), |d| {
            d.iter().filter(|a| a.delivered).count() == 11
        })
        .await
        .unwrap();
    let (_, max_overall, max_per_chat) = *stats.lock().unwrap();
    assert_eq!(max_overall, 4, "max_connections deliveries at once");
    assert_eq!(max_per_chat, 1, "one chat's updates go one at a time");
}

#[tokio::test]
async fn without_max_connections_up_to_40_deliveries_run_at_once() {
    let emu = start().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let stats = slow_server(listener, Duration::from_millis(500)).await;
    ok(&emu, "setWebhook", json!({"url": url})).await;
    for chat in 1..=45 {
        emu.client().send_user_text(chat, "hi").await.unwrap();
    }
    emu.client()
        .wait_for_deliveries(Duration::from_secs(20), |d| {
            d.iter().filter(|a| a.delivered).count() == 45
        })
        .await
        .unwrap();
    assert_eq!(stats.lock().unwrap().1, 40);
}

#[tokio::test]
async fn a_hang_up_rule_drops_the_delivery_before_the_answer_and_it_is_retried() {
    let emu = start().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let stats = slow_server(listener, Duration::from_millis(300)).await;
    ok(&emu, "setWebhook", json!({"url": url})).await;
    emu.client()
        .hang_up_webhook(1, Duration::from_millis(50))
        .await
        .unwrap();
    let queued = emu.client().send_user_text(3, "hold on").await.unwrap();
    let deliveries = emu
        .client()
        .wait_for_deliveries(Duration::from_secs(10), |d| d.iter().any(|a| a.delivered))
        .await
        .unwrap();
    assert_eq!(deliveries.len(), 2, "{deliveries:?}");
    assert_eq!(deliveries[0].update_id, queued.update_id);
    assert!(!deliveries[0].delivered && deliveries[0].status.is_none());
    assert!(
        deliveries[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("closed")),
        "{deliveries:?}"
    );
    assert_eq!((deliveries[1].attempt, deliveries[1].delivered), (2, true));
    drop(stats);
}
