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
pub mod startup;
pub mod store;
pub mod token;
pub mod web;
pub mod wire;
