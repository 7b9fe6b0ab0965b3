//! API tests: the real app on port 0 with a fresh SQLite file, over real HTTP.
#[path = "../kit/mod.rs"]
mod kit;

mod auth;
mod bad_input;
mod contract;
mod dst;
mod durability;
mod endpoints;
mod floor_dynamo;
mod idempotency;
mod limits;
mod live;
mod live_floor;
mod loadgen;
mod loadgen_plot;
mod mail;
mod mail_faults;
mod problem;
mod races;
mod waitlist;
mod waitlist_dynamo;
mod waitlist_mail;
