//! The whole mesh in the test's own process on the embedded backend,
//! against a fresh Telegram Bot API emulator: for black-box tests that talk
//! to the bot as a chat user and need no process boundaries.

use std::time::Duration;

use polybot::Mesh;
use polybot::stack::{StackOptions, start_mesh};
use tg_emulator::{Emulator, EmulatorClient, EmulatorHandle};

/// A running mesh and the emulator it answers; its data lives in a
/// temporary folder for as long as this does.
pub struct InProcess {
    pub emulator: EmulatorHandle,
    pub client: EmulatorClient,
    pub mesh: Mesh,
    pub dir: tempfile::TempDir,
}

impl InProcess {
    /// Starts it with one detector lane and quick polls (so shutdown is
    /// quick), after `tweak` has had its say on the options.
    pub async fn start(tweak: impl FnOnce(&mut StackOptions)) -> Self {
        polybot_testkit::install_crypto_provider();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut opts = StackOptions::local(dir.path());
        opts.poll_wait = Duration::from_millis(500);
        opts.reporter_interval = None;
        opts.lanes = 1;
        tweak(&mut opts);
        let emulator = Emulator::start("127.0.0.1:0").await.expect("emulator");
        let mesh = start_mesh(&emulator.base_url(), emulator.token(), &opts)
            .await
            .expect("mesh starts");
        Self {
            client: emulator.client(),
            emulator,
            mesh,
            dir,
        }
    }

    /// Started with no "still working" notice, so that each request gets
    /// exactly one message: its answer.
    pub async fn without_notice() -> Self {
        Self::start(|o| o.notice_after = Duration::from_secs(600)).await
    }

    pub async fn stop(self) {
        self.mesh.shutdown().await;
    }
}
