//! `detector bench`: the figures behind BENCHMARKS.md, from one run on the
//! same photos. Raw `session.run` time vs end-to-end time, square vs rect
//! letterbox, FP32 vs INT8, a 12-megapixel photo vs bus.jpg, throughput
//! with 1 and 2 lanes, and a Python reference pipeline (onnxruntime +
//! Pillow + numpy) run side by side.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use clap::Args;
use serde::Deserialize;

use polybot_inference::agreement::{self, Agreement};
use polybot_inference::engine::{Engine, encode_jpeg};
use polybot_inference::geometry::LetterboxMode;
use polybot_inference::model::Precision;
use polybot_inference::pool::Detector;
use polybot_inference::{DetectOutput, Timings};

use crate::model_args::ModelArgs;

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Timed runs per image and configuration (after 3 warm-up runs).
    #[arg(long, default_value_t = 30)]
    pub iterations: usize,
    /// Python interpreter with onnxruntime, numpy and Pillow, for the reference pipeline.
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// The reference pipeline script (detector/bench/reference.py).
    #[arg(long)]
    pub python_script: Option<PathBuf>,
    /// Photos to run on; defaults to the sample photos from `cargo xtask setup`.
    pub images: Vec<PathBuf>,
}

struct PerImage {
    name: String,
    width: u32,
    height: u32,
    raw: Duration,
    e2e: Duration,
    stages: Timings,
    square_raw: Duration,
    square_e2e: Duration,
    same_detections: bool,
    counts: String,
}

#[derive(Deserialize)]
struct PythonResult {
    image: String,
    e2e_ms: f64,
    infer_ms: f64,
    counts: String,
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn counts(out: &DetectOutput) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for d in &out.detections {
        *m.entry(d.class_name.clone()).or_insert(0) += 1;
    }
    m
}

fn counts_text(m: &BTreeMap<String, usize>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}×{v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One engine on one photo: raw median, e2e median, mean stage timings
/// and the last output.
struct Timed {
    raw: Duration,
    e2e: Duration,
    stages: Timings,
    out: DetectOutput,
}

/// Times one engine configuration on one photo.
fn time_engine(engine: &mut Engine, bytes: &[u8], iterations: usize) -> anyhow::Result<Timed> {
    let mut timed = time_engines(&mut [engine], bytes, iterations)?;
    timed
        .pop()
        .ok_or_else(|| anyhow::anyhow!("no engine was timed"))
}

/// Times several engines on one photo, taking turns each iteration so that
/// drift in CPU frequency or load hits them all equally.
fn time_engines(
    engines: &mut [&mut Engine],
    bytes: &[u8],
    iterations: usize,
) -> anyhow::Result<Vec<Timed>> {
    let Some(first) = engines.first() else {
        return Ok(Vec::new());
    };
    let decoded = polybot_inference::decode::decode(bytes, first.config().limits)?;
    for engine in engines.iter_mut() {
        for _ in 0..3 {
            engine.time_raw_inference(&decoded)?;
            engine.detect(bytes)?;
        }
    }
    let n = engines.len();
    let (mut raw, mut e2e) = (vec![Vec::new(); n], vec![Vec::new(); n]);
    let mut sum = vec![Timings::default(); n];
    let mut last = vec![None; n];
    for _ in 0..iterations {
        for (i, engine) in engines.iter_mut().enumerate() {
            raw[i].push(engine.time_raw_inference(&decoded)?);
            let t = Instant::now();
            let out = engine.detect(bytes)?;
            e2e[i].push(t.elapsed());
            let (s, sum) = (&out.timings, &mut sum[i]);
            sum.decode += s.decode;
            sum.preprocess += s.preprocess;
            sum.inference += s.inference;
            sum.postprocess += s.postprocess;
            sum.annotate += s.annotate;
            sum.encode += s.encode;
            last[i] = Some(out);
        }
    }
    let k = iterations.max(1) as u32;
    let mut timed = Vec::with_capacity(n);
    for ((raw, e2e), (sum, last)) in raw.into_iter().zip(e2e).zip(sum.into_iter().zip(last)) {
        timed.push(Timed {
            raw: median(raw),
            e2e: median(e2e),
            stages: Timings {
                decode: sum.decode / k,
                preprocess: sum.preprocess / k,
                inference: sum.inference / k,
                postprocess: sum.postprocess / k,
                annotate: sum.annotate / k,
                encode: sum.encode / k,
            },
            out: last.ok_or_else(|| anyhow::anyhow!("no iterations ran"))?,
        });
    }
    Ok(timed)
}

/// A 12-megapixel phone-sized JPEG made from `bytes` by upscaling (so that
/// nothing new is fetched): 4032 pixels on the longer side, quality 90.
fn twelve_megapixels(bytes: &[u8]) -> anyhow::Result<(Vec<u8>, u32, u32)> {
    let small = polybot_inference::decode::decode(
        bytes,
        polybot_inference::decode::DecodeLimits::default(),
    )?;
    let (w, h) = small.dimensions();
    let scale = 4032.0 / w.max(h) as f32;
    let (bw, bh) = (
        (w as f32 * scale).round() as u32,
        (h as f32 * scale).round() as u32,
    );
    let big = image::imageops::resize(&small, bw, bh, image::imageops::FilterType::Triangle);
    Ok((encode_jpeg(&big, 90)?, bw, bh))
}

async fn throughput(
    args: &ModelArgs,
    lanes: usize,
    photos: &[Vec<u8>],
    jobs: usize,
) -> anyhow::Result<f64> {
    let mut opts = args.pool_options();
    opts.lanes = lanes;
    opts.source.intra_threads = 1;
    let detector = Detector::load(&opts)?;
    let start = Instant::now();
    // The lanes run the work; polling every request together keeps them busy.
    let requests = (0..jobs).map(|i| {
        let d = detector.clone();
        let bytes = photos[i % photos.len()].clone();
        async move { d.detect(bytes).await }
    });
    for result in futures::future::join_all(requests).await {
        result?;
    }
    let rate = jobs as f64 / start.elapsed().as_secs_f64();
    detector.join();
    Ok(rate)
}

/// Opens a rect-letterbox engine of one precision.
fn engine_for(args: &ModelArgs, precision: Precision) -> anyhow::Result<Engine> {
    let mut model = args.clone();
    model.precision = precision.into();
    let opts = model.pool_options();
    let mut engine = Engine::open(&opts.source, opts.config)?;
    engine.set_letterbox(LetterboxMode::Rect);
    Ok(engine)
}

/// FP32 vs INT8 on each photo: raw and end-to-end medians, their ratio, and
/// whether INT8 finds what FP32 finds.
fn precision_section(
    args: &BenchArgs,
    images: &[PathBuf],
    photos: &[Vec<u8>],
) -> anyhow::Result<()> {
    println!(
        "\n## FP32 vs INT8 (rect letterbox, 1 lane, median of {} runs)",
        args.iterations
    );
    if !args.model.int8_model.is_file() {
        println!(
            "skipped: no INT8 model at {} (run `cargo xtask setup`)",
            args.model.int8_model.display()
        );
        return Ok(());
    }
    let mut fp32 = engine_for(&args.model, Precision::Fp32)?;
    let mut int8 = engine_for(&args.model, Precision::Int8)?;
    println!(
        "{:<12} {:>9} {:>9} {:>7} {:>9} {:>9} {:>7}  agreement (FP32 conf ≥ {}, IoU ≥ {})",
        "image",
        "fp32 raw",
        "int8 raw",
        "raw ×",
        "fp32 e2e",
        "int8 e2e",
        "e2e ×",
        agreement::MIN_CONFIDENCE,
        agreement::MIN_IOU
    );
    for (path, bytes) in images.iter().zip(photos) {
        let mut timed = time_engines(&mut [&mut fp32, &mut int8], bytes, args.iterations)?;
        let (Some(q), Some(f)) = (timed.pop(), timed.pop()) else {
            anyhow::bail!("an engine was not timed");
        };
        let a: Agreement = agreement::compare(
            &f.out.detections,
            &q.out.detections,
            agreement::MIN_CONFIDENCE,
            agreement::MIN_IOU,
        );
        println!(
            "{:<12} {:>9.1} {:>9.1} {:>7.2} {:>9.1} {:>9.1} {:>7.2}  {a}{}",
            file_name(path),
            ms(f.raw),
            ms(q.raw),
            ms(f.raw) / ms(q.raw),
            ms(f.e2e),
            ms(q.e2e),
            ms(f.e2e) / ms(q.e2e),
            if a.holds() { "" } else { "  NOT MET" }
        );
    }
    Ok(())
}

/// A 12-megapixel JPEG (the first photo upscaled) against the photo itself,
/// end to end, for each precision available.
fn large_photo_section(args: &BenchArgs, small: &[u8]) -> anyhow::Result<()> {
    let (big, bw, bh) = twelve_megapixels(small)?;
    println!(
        "\n## 12-megapixel JPEG ({bw}x{bh}, {:.1} MB, the first photo upscaled) vs the photo, 1 lane, median of {} runs",
        big.len() as f64 / 1e6,
        args.iterations
    );
    println!(
        "{:<6} {:<7} {:>10} {:>10} {:>10} {:>8} {:>7} {:>7} {:>7} {:>7} {:>8}  detections",
        "prec",
        "photo",
        "size",
        "annotated",
        "e2e ms",
        "decode",
        "prep",
        "infer",
        "draw",
        "encode",
        "vs small"
    );
    let mut precisions = vec![Precision::Fp32];
    if args.model.int8_model.is_file() {
        precisions.push(Precision::Int8);
    }
    for precision in precisions {
        let mut engine = engine_for(&args.model, precision)?;
        let small_t = time_engine(&mut engine, small, args.iterations)?;
        let big_t = time_engine(&mut engine, &big, args.iterations)?;
        for (label, t) in [("small", &small_t), ("12 MP", &big_t)] {
            let annotated = image::load_from_memory(&t.out.annotated_jpeg)?;
            let s = &t.stages;
            println!(
                "{:<6} {:<7} {:>10} {:>10} {:>10.1} {:>8.2} {:>7.2} {:>7.2} {:>7.2} {:>7.2} {:>8.2}  {}",
                precision.as_str(),
                label,
                format!("{}x{}", t.out.width, t.out.height),
                format!("{}x{}", annotated.width(), annotated.height()),
                ms(t.e2e),
                ms(s.decode),
                ms(s.preprocess),
                ms(s.inference),
                ms(s.annotate),
                ms(s.encode),
                ms(t.e2e) / ms(small_t.e2e),
                counts_text(&counts(&t.out))
            );
        }
    }
    Ok(())
}

/// Clips made from the photos (people, then a bus), each detected as a
/// video job is: sampled (one frame a second, at most 30), every frame
/// detected, annotated and encoded, key frames chosen. Seconds per clip
/// and sampled frames per second, 1 lane, median of a few runs.
fn video_section(args: &BenchArgs, photos: &[Vec<u8>]) -> anyhow::Result<()> {
    use polybot_inference::video::{ClipFormat, detect_clip, encode_clip};
    let runs = (args.iterations / 10).clamp(1, 5);
    let opts = args.model.pool_options();
    let version = opts.video.check()?;
    let version: Vec<&str> = version.split_whitespace().take(3).collect();
    println!(
        "\n## Clips (1 lane, {}, median of {runs} runs; {})",
        args.model.precision_choice().precision,
        version.join(" ")
    );
    println!(
        "{:<34} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9}  peaks",
        "clip", "length", "MB", "frames", "s/clip", "frames/s", "decode s"
    );
    let segments = |secs: u64| -> Vec<(&[u8], Duration)> {
        photos
            .iter()
            .rev()
            .map(|p| (p.as_slice(), Duration::from_secs(secs)))
            .collect()
    };
    let clips = [
        (
            "H.264 High, B-frames, 30 fps",
            segments(5),
            30,
            ClipFormat::H264,
        ),
        (
            "H.264 High, 30 fps, 2 minutes",
            segments(60),
            30,
            ClipFormat::H264,
        ),
        (
            "GIF (silent MP4), 10 fps",
            segments(3),
            10,
            ClipFormat::Animation,
        ),
        ("VP9 WebM, 30 fps", segments(5), 30, ClipFormat::Vp9),
    ];
    let mut engine = engine_for(&args.model, args.model.precision_choice().precision)?;
    let settings = polybot_domain::ChatSettings::default();
    for (name, segments, fps, format) in clips {
        let clip = encode_clip(&opts.video.ffmpeg, &segments, fps, format)?;
        let mut times = Vec::with_capacity(runs);
        let mut last = None;
        for _ in 0..runs {
            let started = Instant::now();
            let out = detect_clip(&mut engine, &opts.video, &clip, &settings, &|_| {})?;
            times.push(started.elapsed());
            last = Some(out);
        }
        let Some(out) = last else { continue };
        let per_clip = median(times);
        let peaks: Vec<String> = out
            .peaks
            .iter()
            .map(|p| format!("{} ×{}", p.class, p.count))
            .collect();
        println!(
            "{:<34} {:>7.0}s {:>8.1} {:>8} {:>9.2} {:>9.1} {:>9.2}  {}",
            name,
            out.duration.as_secs_f64(),
            clip.len() as f64 / 1e6,
            out.sampled,
            per_clip.as_secs_f64(),
            out.sampled as f64 / per_clip.as_secs_f64(),
            out.decode.as_secs_f64(),
            peaks.join(", ")
        );
    }
    Ok(())
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The CPU the figures were measured on: its model name and the vector
/// extensions that decide inference speed (from `/proc/cpuinfo`, as
/// `lscpu` shows them), and how many CPUs this process sees.
fn cpu_line() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let flags = field("flags");
    let vector: Vec<&str> = flags
        .split_whitespace()
        .filter(|f| {
            [
                "avx2",
                "fma",
                "avx512f",
                "avx512_vnni",
                "avx_vnni",
                "amx_int8",
            ]
            .contains(f)
        })
        .collect();
    format!(
        "CPU: {} ({} CPUs; {})",
        field("model name"),
        num_cpus::get(),
        vector.join(" ")
    )
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

pub async fn run(args: BenchArgs) -> anyhow::Result<bool> {
    let images = if args.images.is_empty() {
        let dir = polybot_inference::model::default_assets_dir();
        vec![dir.join("bus.jpg"), dir.join("zidane.jpg")]
    } else {
        args.images.clone()
    };
    let photos: Vec<Vec<u8>> = images
        .iter()
        .map(|p| std::fs::read(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display())))
        .collect::<Result<_, _>>()?;

    let mut opts = args.model.pool_options();
    opts.source.intra_threads = args.model.intra_threads;
    let mut engine = Engine::open(&opts.source, opts.config)?;
    println!("{}", cpu_line());
    println!(
        "model {} ({}, {} classes, input {} {}), {} intra-op thread(s), {} iterations",
        args.model.model_path().display(),
        args.model.precision_choice().precision,
        engine.info().classes.len(),
        engine.info().size,
        if engine.info().dynamic {
            "dynamic"
        } else {
            "fixed"
        },
        args.model.intra_threads,
        args.iterations
    );

    let mut results = Vec::new();
    for (path, bytes) in images.iter().zip(&photos) {
        engine.set_letterbox(LetterboxMode::Rect);
        let Timed {
            raw,
            e2e,
            stages,
            out,
        } = time_engine(&mut engine, bytes, args.iterations)?;
        engine.set_letterbox(LetterboxMode::Square);
        let square = time_engine(&mut engine, bytes, args.iterations)?;
        let (square_raw, square_e2e, square_out) = (square.raw, square.e2e, square.out);
        let (rect_counts, square_counts) = (counts(&out), counts(&square_out));
        results.push(PerImage {
            name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            width: out.width,
            height: out.height,
            raw,
            e2e,
            stages,
            square_raw,
            square_e2e,
            same_detections: rect_counts == square_counts,
            counts: counts_text(&rect_counts),
        });
    }
    drop(engine);

    println!(
        "\n## Latency per image, 1 lane (median of {} runs)",
        args.iterations
    );
    println!(
        "{:<12} {:>10} {:>10} {:>10} {:>8}  detections",
        "image", "size", "raw ms", "e2e ms", "e2e/raw"
    );
    for r in &results {
        println!(
            "{:<12} {:>10} {:>10.1} {:>10.1} {:>8.3}  {}",
            r.name,
            format!("{}x{}", r.width, r.height),
            ms(r.raw),
            ms(r.e2e),
            ms(r.e2e) / ms(r.raw),
            r.counts
        );
    }
    println!("\n## Stage means (rect letterbox), ms");
    println!(
        "{:<12} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "image", "decode", "prep", "infer", "post", "draw", "encode"
    );
    for r in &results {
        let s = &r.stages;
        println!(
            "{:<12} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            r.name,
            ms(s.decode),
            ms(s.preprocess),
            ms(s.inference),
            ms(s.postprocess),
            ms(s.annotate),
            ms(s.encode)
        );
    }
    println!("\n## Square vs rect letterbox (median ms)");
    println!(
        "{:<12} {:>10} {:>10} {:>10} {:>10} {:>10}  same detections",
        "image", "sq raw", "rect raw", "sq e2e", "rect e2e", "rect/sq"
    );
    for r in &results {
        println!(
            "{:<12} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>10.3}  {}",
            r.name,
            ms(r.square_raw),
            ms(r.raw),
            ms(r.square_e2e),
            ms(r.e2e),
            ms(r.e2e) / ms(r.square_e2e),
            if r.same_detections { "yes" } else { "NO" }
        );
    }

    precision_section(&args, &images, &photos)?;
    large_photo_section(&args, &photos[0])?;
    video_section(&args, &photos)?;

    let jobs = (args.iterations * photos.len()).max(16);
    let one = throughput(&args.model, 1, &photos, jobs).await?;
    let two = throughput(&args.model, 2, &photos, jobs).await?;
    println!("\n## Throughput, {jobs} photos, 1 intra-op thread per lane");
    println!("1 lane:  {one:.2} images/s");
    println!("2 lanes: {two:.2} images/s  ({:.2}× of 1 lane)", two / one);

    if let (Some(python), Some(script)) = (&args.python, &args.python_script) {
        println!("\n## Python reference (onnxruntime + Pillow + numpy, square 640, 1 thread)");
        let output = Command::new(python)
            .arg(script)
            .arg("--model")
            .arg(&args.model.model)
            .arg("--iterations")
            .arg(args.iterations.to_string())
            .args(&images)
            .output()?;
        if !output.status.success() {
            anyhow::bail!(
                "the Python reference failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        println!(
            "{:<12} {:>10} {:>10} {:>10} {:>10}  python detections",
            "image", "py infer", "py e2e", "our e2e", "ours/py"
        );
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let py: PythonResult = serde_json::from_str(line)?;
            let ours = results.iter().find(|r| r.name == py.image);
            let our_ms = ours.map(|r| ms(r.e2e)).unwrap_or(f64::NAN);
            println!(
                "{:<12} {:>10.1} {:>10.1} {:>10.1} {:>10.3}  {}",
                py.image,
                py.infer_ms,
                py.e2e_ms,
                our_ms,
                our_ms / py.e2e_ms,
                py.counts
            );
        }
    }
    if let Some(rss) = peak_rss_mib() {
        println!("\npeak resident memory of this process: {rss:.0} MiB");
    }
    Ok(true)
}
