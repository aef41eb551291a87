//! Every image's HEALTHCHECK runs a command its binary accepts.
//!
//! For each `docker/*.Dockerfile`: the HEALTHCHECK's exec-form command, run
//! exactly as written, must not be rejected by the binary's argument parser
//! (the reporter image once ran `reporter healthcheck`, a subcommand that
//! did not exist). Nothing listens on the image's port here, so the check
//! itself fails, but as a health check, not as a usage error. The reporter
//! (the one service that needs no model or Telegram to start) is then run
//! on its local backend, and its HEALTHCHECK, pointed at the port it got,
//! passes. The deployment test (`deployment.rs`) does the same for every
//! service on the applied stack.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use polybot_deploy::binaries::binary;
use polybot_deploy::files::Dockerfile;
use polybot_deploy::workspace_root;

fn dockerfiles() -> Vec<(PathBuf, Dockerfile)> {
    let dir = workspace_root().join("docker");
    let mut out: Vec<(PathBuf, Dockerfile)> = std::fs::read_dir(&dir)
        .expect("docker/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".Dockerfile"))
        .map(|p| {
            let d = Dockerfile::read(&p).unwrap_or_else(|e| panic!("{e}"));
            (p, d)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!out.is_empty(), "no docker/*.Dockerfile");
    out
}

#[test]
fn every_dockerfile_healthcheck_command_is_accepted_by_its_binary() {
    for (path, docker) in dockerfiles() {
        let probe = docker
            .healthcheck
            .clone()
            .unwrap_or_else(|| panic!("{}: no HEALTHCHECK", path.display()));
        assert_eq!(
            probe[0],
            docker.entrypoint[0],
            "{}: the HEALTHCHECK runs another binary than the entry point",
            path.display()
        );
        let program = binary(&probe[0]).unwrap_or_else(|e| panic!("{e}"));
        // In the image's environment, as Docker runs it.
        let out = Command::new(&program)
            .args(&probe[1..])
            .env_clear()
            .envs(&docker.env)
            .stdin(Stdio::null())
            .output()
            .expect("run the HEALTHCHECK command");
        let stderr = String::from_utf8_lossy(&out.stderr);
        // clap exits 2 with a usage message on arguments it does not accept.
        assert!(
            out.status.code() != Some(2) && !stderr.contains("Usage:"),
            "{}: `{}` is rejected by the binary ({}):\n{stderr}",
            path.display(),
            probe.join(" "),
            out.status
        );
    }
}

#[test]
fn the_reporter_image_healthcheck_passes_against_a_running_reporter() {
    let docker = Dockerfile::read(&workspace_root().join("docker/reporter.Dockerfile"))
        .unwrap_or_else(|e| panic!("{e}"));
    let probe = docker.healthcheck.clone().expect("a HEALTHCHECK");
    let data = tempfile::tempdir().expect("a data folder");
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        l.local_addr().expect("addr")
    };
    let reporter = binary("reporter").unwrap_or_else(|e| panic!("{e}"));
    let log_path = data.path().join("reporter.log");
    let log = std::fs::File::create(&log_path).expect("a log file");
    let mut child = Command::new(&reporter)
        .env_clear()
        .env("POLYBOT_BACKEND", "local")
        .env("POLYBOT_DATA_DIR", data.path())
        .env("POLYBOT_HTTP_LISTEN", addr.to_string())
        .env("POLYBOT_REPORT_INTERVAL", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start the reporter");
    // The command as the image runs it, on the port this reporter got.
    let args: Vec<String> = probe[1..]
        .iter()
        .map(|a| match a.strip_prefix("http://") {
            Some(rest) => {
                let path = rest.find('/').map_or("", |i| &rest[i..]);
                format!("http://{addr}{path}")
            }
            None => a.clone(),
        })
        .collect();
    let start = Instant::now();
    let passed = loop {
        let status = Command::new(&reporter)
            .args(&args)
            .env_clear()
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run the HEALTHCHECK");
        if status.success() {
            break true;
        }
        if start.elapsed() > Duration::from_secs(30) || child.try_wait().ok().flatten().is_some() {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // /readyz (ready once a report was published) and /metrics answer too.
    let others: Vec<bool> = ["/readyz", "/metrics"]
        .iter()
        .map(|path| {
            let start = Instant::now();
            loop {
                let ok = Command::new(&reporter)
                    .args(["healthcheck", "--url", &format!("http://{addr}{path}")])
                    .env_clear()
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                if ok || start.elapsed() > Duration::from_secs(30) {
                    break ok;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        passed,
        "`reporter {}` never passed; the reporter's log:\n{log}",
        args.join(" ")
    );
    assert_eq!(
        others,
        [true, true],
        "/readyz, /metrics; the reporter's log:\n{log}"
    );
}
