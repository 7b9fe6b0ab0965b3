//! Why a restaurant/date changed: the `cause` of every live update.
use serde::{Deserialize, Serialize};

/// Why a restaurant/date changed; the `cause` of a live update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    Held,
    Released,
    Expired,
    Confirmed,
    Cancelled,
    Seated,
    Completed,
    NoShow,
    WalkIn,
    Changed,
    /// Only the waitlist changed (join, leave, lapse).
    Waitlist,
}

impl Cause {
    pub const ALL: [Cause; 11] = [
        Cause::Held,
        Cause::Released,
        Cause::Expired,
        Cause::Confirmed,
        Cause::Cancelled,
        Cause::Seated,
        Cause::Completed,
        Cause::NoShow,
        Cause::WalkIn,
        Cause::Changed,
        Cause::Waitlist,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Held => "held",
            Cause::Released => "released",
            Cause::Expired => "expired",
            Cause::Confirmed => "confirmed",
            Cause::Cancelled => "cancelled",
            Cause::Seated => "seated",
            Cause::Completed => "completed",
            Cause::NoShow => "no_show",
            Cause::WalkIn => "walk_in",
            Cause::Changed => "changed",
            Cause::Waitlist => "waitlist",
        }
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Cause {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Cause::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown cause `{s}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::Cause;

    #[test]
    fn causes_round_trip_through_their_names_and_serde() {
        for c in Cause::ALL {
            assert_eq!(c.as_str().parse::<Cause>(), Ok(c));
            assert_eq!(
                serde_json::to_string(&c).unwrap(),
                format!("\"{}\"", c.as_str())
            );
        }
        assert!("gone".parse::<Cause>().is_err());
    }
}
