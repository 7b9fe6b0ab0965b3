//! The store contract: every test is written once and runs against SQLite (a temp file) and
//! DynamoDB Local (a fresh table per test). `faults` covers what DynamoDB Local never does.
mod backend;
mod fixtures;
#[path = "../kit/mod.rs"]
mod kit;

/// Runs each named `async fn(DynStore)` of the calling module on both backends.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let b = crate::backend::Backend::sqlite().await;
                    super::$name(&b).await;
                }
            )*
        }
        mod on_dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(b) = crate::backend::Backend::dynamo(concat!(
                        module_path!(), "::", stringify!($name)
                    )).await {
                        super::$name(&b).await;
                    }
                }
            )*
        }
    };
}

mod combinations;
mod faults;
mod fence;
mod holds;
mod limits;
mod midnight;
mod outbox;
mod pacing;
mod pacing_dynamo;
mod restaurants;
mod retention;
mod schema;
mod sessions;
mod shared_items;
mod transitions;
mod upgrade;
mod versions;
mod waitlist;
mod waitlist_dynamo;
mod waitlist_mail;
mod waitlist_races;
