//! The test kit: what the test crates (and the cross-instance bench) share. Each includes it by
//! path, `#[path = "../kit/mod.rs"] mod kit;`, and uses the part it needs.
//!
//! - [`services`]: the one policy for a missing service (DynamoDB Local, Redis, nginx, Chromium).
//! - [`wait`]: waiting for a condition with a deadline.
//! - [`process`]: free ports, child processes ended by PID, the tablecast binary on a real port.
//! - [`app`]: the app in-process on port 0, on a fresh SQLite file or DynamoDB Local table.
//! - [`api`]: an HTTP client for the API, and the restaurant fixtures it creates.
//! - [`smtp`]: a real SMTP server (aiosmtpd) per test, and the mail it accepted.
//! - [`ws`]: a real `/v1/live` WebSocket client and the state a subscriber keeps.
//! - [`metrics`]: the server's `/metrics` text, summed by name and labels.
//! - [`proxy`]: a TCP proxy that delays what a client sends, or goes silent.
#![allow(dead_code)] // every crate uses a part of the kit

pub mod api;
pub mod app;
pub mod metrics;
pub mod process;
pub mod proxy;
pub mod services;
pub mod smtp;
pub mod wait;
pub mod ws;

#[allow(unused_imports)] // the short path, `kit::require(Service::Redis, test)`
pub use services::{require, Service};
