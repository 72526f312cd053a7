//! `spawn_app`: the whole service (API, workbench, read models, indexes, jobs) started inside
//! the test process on `127.0.0.1:0`, on a temporary SQLite store and a clock the test moves
//! (zero2prod's `spawn_app`). For what depends on time: deadlines, countdowns, overdue
//! boards. What needs a real process (kill -9, signals, shutdown) keeps `TestApp::spawn`.

use std::ops::Deref;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use minqing::app::ManualClock;
use minqing::config::Settings;
use minqing::server::Running;

use crate::helpers::{PASSWORD, TestApp};

/// A service running in this process, with its clock.
pub struct SpawnedApp {
    /// The running service (its jobs, its read side); dropped before the data directory.
    pub running: Option<Running>,
    /// The client helpers (`login`, `accept`, `ok`, …), on this service.
    pub app: TestApp,
    /// The service's clock: `set` or `advance` it to move time.
    pub clock: Arc<ManualClock>,
}

impl Deref for SpawnedApp {
    type Target = TestApp;

    fn deref(&self) -> &TestApp {
        &self.app
    }
}

impl SpawnedApp {
    /// Waits until the read model has applied everything stored so far (the pages read it).
    pub async fn caught_up(&self) {
        let running = self.running.as_ref().expect("the service runs");
        let head = running.app.store.head().0;
        assert!(
            running
                .read
                .wait_for(head, std::time::Duration::from_secs(10))
                .await,
            "the read model did not reach position {head}"
        );
    }

    /// Stops the service (in-flight requests finish).
    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await.expect("the service stops");
        }
    }
}

/// Starts the service in-process with its clock showing `now`.
pub async fn spawn_app(now: DateTime<Utc>) -> SpawnedApp {
    spawn_app_on(tempfile::tempdir().expect("temporary data directory"), now).await
}

/// [`spawn_app`] on a data directory the test prepared (e.g. with `minqing import-org`).
pub async fn spawn_app_on(data: tempfile::TempDir, now: DateTime<Utc>) -> SpawnedApp {
    let settings = Settings {
        data_dir: data.path().to_owned(),
        demo_password: PASSWORD.to_owned(),
        ..Settings::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let store = minqing::server::open_store(&settings).expect("the event store");
    let store: Arc<dyn minqing::store::EventStore> = Arc::new(store);
    let clock = Arc::new(ManualClock::new(now));
    let running = minqing::server::start_on(&settings, listener, store, clock.clone())
        .await
        .expect("the service starts");
    SpawnedApp {
        app: TestApp::attached(running.addr.to_string(), data),
        clock,
        running: Some(running),
    }
}
