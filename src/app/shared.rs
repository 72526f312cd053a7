//! The state of a small aggregate every part of the service reads (the directory, the rules):
//! the newest snapshot, replaced whole after each change, while readers keep the one they
//! took for as long as they use it.

use std::sync::{Arc, RwLock};

/// A snapshot that knows how far its stream it was folded.
pub trait Versioned {
    /// The stream's version folded in.
    fn stream_version(&self) -> u64;
}

/// The snapshot in force.
#[derive(Debug)]
pub struct Shared<T> {
    current: RwLock<Arc<T>>,
}

impl<T: Versioned> Shared<T> {
    /// Shared from `snapshot` on.
    pub fn new(snapshot: T) -> Self {
        Self {
            current: RwLock::new(Arc::new(snapshot)),
        }
    }

    /// The snapshot in force.
    pub fn current(&self) -> Arc<T> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Puts `snapshot` in force, unless a newer one already is (two changes finishing out of
    /// order leave the newer).
    pub fn replace(&self, snapshot: T) {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        if snapshot.stream_version() >= current.stream_version() {
            *current = Arc::new(snapshot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct V(u64);
    impl Versioned for V {
        fn stream_version(&self) -> u64 {
            self.0
        }
    }

    #[test]
    fn an_older_snapshot_never_replaces_a_newer_one() {
        let shared = Shared::new(V(2));
        let held = shared.current();
        shared.replace(V(1));
        assert_eq!(shared.current().0, 2);
        shared.replace(V(3));
        assert_eq!(shared.current().0, 3);
        // A reader keeps what it took.
        assert_eq!(held.0, 2);
    }
}
