//! `detector bench`: the figures behind BENCHMARKS.md, from one run on the
//! same photos. Raw `session.run` time vs end-to-end time, square vs rect
//! letterbox, throughput with 1 and 2 lanes, and a Python reference
//! pipeline (onnxruntime + Pillow + numpy) run side by side.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use clap::Args;
use serde::Deserialize;

use crate::cli::ModelArgs;
use crate::engine::Engine;
use crate::geometry::LetterboxMode;
use crate::pool::Detector;
use crate::{DetectOutput, Timings};

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

/// Times one engine configuration on one photo: (raw median, e2e median,
/// mean stage timings, last output).
fn time_engine(
    engine: &mut Engine,
    bytes: &[u8],
    iterations: usize,
) -> anyhow::Result<(Duration, Duration, Timings, DetectOutput)> {
    let decoded = crate::decode::decode(bytes, engine.config().limits)?;
    for _ in 0..3 {
        engine.time_raw_inference(&decoded)?;
        engine.detect(bytes)?;
    }
    let (mut raw, mut e2e) = (Vec::new(), Vec::new());
    let mut sum = Timings::default();
    let mut last = None;
    // Interleaved so that drift in CPU frequency or load hits both equally.
    for _ in 0..iterations {
        raw.push(engine.time_raw_inference(&decoded)?);
        let t = Instant::now();
        let out = engine.detect(bytes)?;
        e2e.push(t.elapsed());
        let s = &out.timings;
        sum.decode += s.decode;
        sum.preprocess += s.preprocess;
        sum.inference += s.inference;
        sum.postprocess += s.postprocess;
        sum.annotate += s.annotate;
        sum.encode += s.encode;
        last = Some(out);
    }
    let n = iterations.max(1) as u32;
    let mean = Timings {
        decode: sum.decode / n,
        preprocess: sum.preprocess / n,
        inference: sum.inference / n,
        postprocess: sum.postprocess / n,
        annotate: sum.annotate / n,
        encode: sum.encode / n,
    };
    let last = last.ok_or_else(|| anyhow::anyhow!("no iterations ran"))?;
    Ok((median(raw), median(e2e), mean, last))
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
    let handles: Vec<_> = (0..jobs)
        .map(|i| {
            let d = detector.clone();
            let bytes = photos[i % photos.len()].clone();
            tokio::spawn(async move { d.detect(bytes).await })
        })
        .collect();
    for h in handles {
        h.await??;
    }
    let rate = jobs as f64 / start.elapsed().as_secs_f64();
    detector.join();
    Ok(rate)
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

pub async fn run(args: BenchArgs) -> anyhow::Result<bool> {
    let images = if args.images.is_empty() {
        let dir = crate::model::default_assets_dir();
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
    println!(
        "model {} ({} classes, input {} {}), {} intra-op thread(s), {} iterations",
        args.model.model.display(),
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
        let (raw, e2e, stages, out) = time_engine(&mut engine, bytes, args.iterations)?;
        engine.set_letterbox(LetterboxMode::Square);
        let (square_raw, square_e2e, _, square_out) =
            time_engine(&mut engine, bytes, args.iterations)?;
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
