//! Settings: built-in defaults, overridden by the environment (`MINQING_*`) and the command
//! line. Tests build `Settings` in code.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything `minqing serve` needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to listen on (`--addr`, `MINQING_ADDR`; default `127.0.0.1:8080`; port 0 picks a
    /// free port).
    pub addr: SocketAddr,
    /// Data directory holding the event store and the users file (`--data`, `MINQING_DATA`;
    /// default `./data`, created and seeded on first start).
    pub data_dir: PathBuf,
    /// Password of every demo account when the data directory is first seeded
    /// (`MINQING_DEMO_PASSWORD`; default `demo-12345`). Never logged.
    pub demo_password: String,
    /// The overdue sweep's warning window (到期预警), in working hours: a holder whose deadline
    /// falls due within it gets one recorded warning (`--deadline-warning-hours`,
    /// `MINQING_DEADLINE_WARNING_HOURS`; default 4, 1 to 80).
    pub deadline_warning_hours: u32,
}

impl Settings {
    /// The event store file inside the data directory.
    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join("events.db")
    }
}
