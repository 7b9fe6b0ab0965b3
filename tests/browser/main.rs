//! Browser tests: the diner app and the staff dashboard in real headless Chromium (Debian's
//! `chromium` + `chromium-driver`), driven over WebDriver, against the real binary.
mod harness;
#[path = "../kit/mod.rs"]
mod kit;

mod booking;
mod confirm;
mod expiry;
mod floor;
mod focus;
mod manage;
mod race;
mod reconnect;
mod screenshots;
mod staff_signin;
mod waitlist;
