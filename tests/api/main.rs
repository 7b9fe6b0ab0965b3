//! API tests: the real app on port 0 with a fresh SQLite file, over real HTTP.
mod helpers;

mod durability;
mod races;
