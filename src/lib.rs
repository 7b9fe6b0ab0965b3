//! tablecast: real-time restaurant reservations.
pub mod booking;
pub mod config;
pub mod demo;
pub mod domain;
pub mod http;
pub mod live;
pub mod loadgen;
pub mod mail;
pub mod metrics;
pub mod setting;
pub mod startup;
pub mod store;
pub mod token;
pub mod web;
pub mod wire;

/// Writes one line to standard output, as `println!` does, but a closed output (a pipe whose
/// reader went away) is no reason to stop: `println!` panicked there, at start-up or at the
/// very end of a clean drain, and the process exited 101.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}
