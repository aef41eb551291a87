//! `polybot demo`: the whole system on this machine with no AWS account and
//! no Telegram token. A Telegram Bot API emulator plays the chat; the demo
//! sends the sample photos as a user would (some captioned with a filter,
//! two albums, and a video made from them), prints the conversation and
//! saves the pictures the bot sent back.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use polybot_domain::ChatId;
use tg_emulator::{Emulator, EmulatorClient, SentKind, SentMessage, UserMessageOptions};

use crate::stack::{StackOptions, start_mesh};

#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Folder for the annotated photos the bot sends back.
    #[arg(long, default_value = "demo-out")]
    pub out: PathBuf,
    /// Data folder for the embedded backend (default: a fresh temporary one).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Give up waiting for a reply after this many seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// Model precision of the detector: `auto` (INT8 on CPUs with AVX-512
    /// VNNI or AMX, FP32 elsewhere), `fp32` or `int8` (see BENCHMARKS.md).
    #[arg(long, env = "POLYBOT_PRECISION", value_enum, default_value_t = Default::default())]
    pub precision: polybot_detector::model::PrecisionSetting,
}

/// The demo chat: the chat id from the course's examples.
const CHAT: i64 = 1243002838;

enum Send {
    Text(&'static str),
    Photo(PathBuf),
    /// A photo whose caption asks for a filter.
    Captioned(PathBuf, &'static str),
    /// Photos sent together, the caption on the first.
    Album(Vec<PathBuf>, Option<&'static str>),
    Document {
        name: &'static str,
        bytes: Vec<u8>,
    },
    /// A video made from photos, each shown for some seconds.
    Video {
        name: &'static str,
        bytes: Vec<u8>,
        seconds: u32,
    },
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let assets = polybot_detector::model::default_assets_dir();
    let photo = |name: &str| -> anyhow::Result<PathBuf> {
        let p = assets.join(name);
        if !p.is_file() {
            bail!("{} is missing: run `cargo xtask setup` first", p.display());
        }
        Ok(p)
    };
    let zidane = std::fs::read(photo("zidane.jpg")?)?;
    let steps = vec![
        Send::Text("/start"),
        Send::Photo(photo("bus.jpg")?),
        Send::Document {
            name: "zidane.jpg",
            bytes: zidane.clone(),
        },
        Send::Document {
            name: "holiday.jpg",
            bytes: b"this file only pretends to be a photo".to_vec(),
        },
        Send::Captioned(photo("bus.jpg")?, "rotate"),
        Send::Captioned(photo("zidane.jpg")?, "segment 128"),
        Send::Captioned(photo("zidane.jpg")?, "blur 65"),
        Send::Album(vec![photo("bus.jpg")?, photo("zidane.jpg")?], None),
        Send::Album(
            vec![photo("bus.jpg")?, photo("zidane.jpg")?],
            Some("concat"),
        ),
        // Three seconds of people, then three of a bus, as a phone records
        // (H.264 High profile with B-frames), made with the detector's ffmpeg.
        Send::Video {
            name: "people-then-bus.mp4",
            bytes: polybot_detector::video::encode_clip(
                &polybot_detector::video::default_ffmpeg_path(),
                &[
                    (zidane.as_slice(), Duration::from_secs(3)),
                    (
                        std::fs::read(photo("bus.jpg")?)?.as_slice(),
                        Duration::from_secs(3),
                    ),
                ],
                30,
                polybot_detector::video::ClipFormat::H264,
            )
            .context("making the demo's video with ffmpeg (run `cargo xtask setup`)")?,
            seconds: 6,
        },
    ];

    let temp;
    let data_dir = match &args.data_dir {
        Some(d) => d.clone(),
        None => {
            temp = tempfile_dir()?;
            temp.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let out = args.out.canonicalize().unwrap_or(args.out.clone());

    let emulator = Emulator::start("127.0.0.1:0").await?;
    let mut opts = StackOptions::local(&data_dir);
    opts.reporter_interval = None;
    opts.precision = args.precision;
    let mesh = start_mesh(&emulator.base_url(), emulator.token(), &opts).await?;
    let client = emulator.client();

    println!("Polybot demo: the whole mesh on this machine, no AWS account, no Telegram token.");
    println!("  Telegram Bot API emulator  {}", emulator.base_url());
    println!(
        "  gateway webhook            http://{}/telegram/webhook",
        mesh.gateway.http_addr()
    );
    println!(
        "  Results gRPC               {}  (grpcurl -plaintext {} list)",
        mesh.gateway.grpc_addr(),
        mesh.gateway.grpc_addr()
    );
    if let Some(token) = &opts.results_credentials.operator {
        let path = crate::write_operator_token(&data_dir, token)?;
        println!(
            "  operator token             {}  (grpcurl -H \"authorization: Bearer $(cat {})\" …)",
            path.display(),
            path.display()
        );
    }
    println!("  data folder                {}", data_dir.display());
    println!();

    let mut seen = 0usize;
    let mut saved = 0usize;
    let result = async {
        for send in &steps {
            match send {
                Send::Text(t) => {
                    println!("you: {t}");
                    client.send_user_text(CHAT, t).await?;
                }
                Send::Photo(path) => {
                    let bytes = std::fs::read(path)?;
                    println!("you: [photo {}{}]", file_name(path), dims(&bytes));
                    client
                        .send_user_photo(CHAT, bytes, &UserMessageOptions::default())
                        .await?;
                }
                Send::Captioned(path, caption) => {
                    let bytes = std::fs::read(path)?;
                    println!(
                        "you: [photo {}{}] captioned \"{caption}\"",
                        file_name(path),
                        dims(&bytes)
                    );
                    let opts = UserMessageOptions {
                        caption: Some((*caption).to_owned()),
                        ..Default::default()
                    };
                    client.send_user_photo(CHAT, bytes, &opts).await?;
                }
                Send::Album(paths, caption) => {
                    let group = format!("demo-album-{}", paths.len() + seen);
                    for (i, path) in paths.iter().enumerate() {
                        let bytes = std::fs::read(path)?;
                        let caption = caption.filter(|_| i == 0);
                        println!(
                            "you: [album photo {}{}]{}",
                            file_name(path),
                            dims(&bytes),
                            caption
                                .map(|c| format!(" captioned \"{c}\""))
                                .unwrap_or_default()
                        );
                        let opts = UserMessageOptions {
                            caption: caption.map(str::to_owned),
                            media_group_id: Some(group.clone()),
                            ..Default::default()
                        };
                        client.send_user_photo(CHAT, bytes, &opts).await?;
                    }
                }
                Send::Document { name, bytes } => {
                    println!("you: [file {name}{}]", dims(bytes));
                    let opts = UserMessageOptions {
                        file_name: Some((*name).to_owned()),
                        mime_type: Some("image/jpeg".into()),
                        ..Default::default()
                    };
                    client
                        .send_user_document(CHAT, bytes.clone(), &opts)
                        .await?;
                }
                Send::Video {
                    name,
                    bytes,
                    seconds,
                } => {
                    println!(
                        "you: [video {name}, {seconds} s, {:.1} MB]",
                        bytes.len() as f64 / 1e6
                    );
                    let meta = tg_emulator::VideoMeta::new(1280, 720, *seconds);
                    client
                        .send_user_video(CHAT, bytes.clone(), &meta, &UserMessageOptions::default())
                        .await?;
                }
            }
            let messages = answer(&client, seen, Duration::from_secs(args.timeout)).await?;
            for m in &messages[seen..] {
                print_reply(&client, &mesh, m, &out, &mut saved).await?;
            }
            seen = messages.len();
            println!();
        }
        anyhow::Ok(())
    }
    .await;

    mesh.shutdown().await;
    emulator.shutdown().await;
    result?;
    println!(
        "{saved} picture(s) the bot sent written to {}",
        out.display()
    );
    Ok(())
}

/// Waits for the bot's answer to the last message: everything after
/// `seen`, up to and including the first message that is not the "still
/// working" notice (a slow answer has one before it).
async fn answer(
    client: &EmulatorClient,
    seen: usize,
    timeout: Duration,
) -> anyhow::Result<Vec<SentMessage>> {
    let mut want = seen + 1;
    loop {
        let messages = client
            .wait_for_messages(CHAT, want, timeout)
            .await
            .context("the bot did not answer in time")?;
        // The demo's user writes in English.
        let lang = polybot_domain::Lang::En;
        let notices = [
            polybot_gateway::progress::detect_notice_text(lang),
            polybot_gateway::progress::filter_notice_text(lang),
            polybot_gateway::progress::clip_notice_text(lang),
        ];
        let notice = |m: &SentMessage| {
            let text = m.text.as_deref().unwrap_or_default();
            notices.iter().any(|n| text.starts_with(n.as_str()))
        };
        if messages[seen..].iter().any(|m| !notice(m)) {
            return Ok(messages);
        }
        want = messages.len() + 1;
    }
}

fn tempfile_dir() -> anyhow::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("polybot-demo-")
        .tempdir()
        .context("creating a temporary data folder")
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn dims(bytes: &[u8]) -> String {
    image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .ok()
        .and_then(|r| r.into_dimensions().ok())
        .map(|(w, h)| format!(", {w}×{h}"))
        .unwrap_or_default()
}

async fn print_reply(
    client: &EmulatorClient,
    mesh: &crate::Mesh,
    m: &SentMessage,
    out: &Path,
    saved: &mut usize,
) -> anyhow::Result<()> {
    match m.kind {
        SentKind::Text => println!("bot: {}", m.text.as_deref().unwrap_or_default()),
        SentKind::Photo | SentKind::Document | SentKind::Video => {
            let caption = m.caption.as_deref().unwrap_or_default();
            let Some(file) = &m.file else {
                println!("bot: [photo] {caption}");
                return Ok(());
            };
            let bytes = client.file_bytes(&file.file_id).await?;
            *saved += 1;
            let png = bytes.starts_with(b"\x89PNG");
            let dest = out.join(format!("reply-{saved}.{}", if png { "png" } else { "jpg" }));
            std::fs::write(&dest, &bytes)?;
            let what = if m.kind == SentKind::Document {
                "file"
            } else {
                "photo"
            };
            println!("bot: [{what}{}] {caption}", dims(&bytes));
            println!("     saved to {}", dest.display());
            // The detections behind the caption, as stored in the table.
            let records = mesh.backends.table.list_by_chat(ChatId(CHAT), 1).await?;
            if let Some(polybot_domain::JobResult::Detected(summary)) =
                records.first().and_then(|r| r.result.as_ref())
            {
                for l in &summary.labels {
                    println!(
                        "       {:<14} {:.2}  centre ({:.2}, {:.2})  size {:.2}×{:.2}",
                        l.class, l.confidence, l.cx, l.cy, l.width, l.height
                    );
                }
            }
        }
    }
    Ok(())
}
