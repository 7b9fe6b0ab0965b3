//! A setting (a flag, or its environment twin) the process cannot use. `main` exits 2 for one,
//! as for a flag the argument parser refuses; any other failure to start (the store
//! unreachable, the port in use) exits 1.

/// The reason, naming the flag.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadSetting(pub String);

/// A [`BadSetting`] as an error to return.
pub fn bad(reason: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(BadSetting(reason.into()))
}

/// Whether `e` is, or was caused by, a [`BadSetting`].
pub fn is_bad_setting(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<BadSetting>())
}
