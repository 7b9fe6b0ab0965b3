use super::FieldError;
use serde::Serialize;

/// A party of 1 to 100 guests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct PartySize(u32);

impl PartySize {
    pub const MAX: u32 = 100;

    pub fn new(n: i64) -> Result<Self, FieldError> {
        if (1..=i64::from(Self::MAX)).contains(&n) {
            Ok(PartySize(n as u32))
        } else {
            Err(FieldError::new(
                "party_size",
                format!("must be between 1 and {}", Self::MAX),
            ))
        }
    }
    pub fn get(self) -> u32 {
        self.0
    }
}
