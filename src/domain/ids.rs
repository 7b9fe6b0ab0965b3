//! Ids of restaurants and reservations: UUIDs in their hyphenated form, parsed once at the edge.
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// A new id for a row the service creates (a restaurant, a reservation, a waitlist entry, a
/// mail): a UUID of version 7. Its leading 48 bits are the Unix time in milliseconds; the `uuid`
/// crate follows them with a 42-bit counter that starts at a random value each millisecond and
/// keeps the ids of one process in order within it, and ends with 32 random bits (bytes 12–15:
/// the DynamoDB shards and a booking's reference read those). Ids made later sort later, so an
/// index keyed by id (SQLite's primary keys, the member-table rows keyed by their reservation)
/// grows at its right edge: a group commit dirties one leaf page of it, not one page per hold
/// scattered over the whole index. The time it
/// carries is no secret (a reservation shows its `created_at`), and an id grants nothing on its
/// own: the token does.
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}

macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident, $what:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Uuid);

        impl $name {
            /// Accepts only the hyphenated form (`8-4-4-4-12` hex digits, either case).
            pub fn parse(s: &str) -> Result<Self, String> {
                match Uuid::try_parse(s) {
                    Ok(id) if s.len() == 36 => Ok($name(id)),
                    _ => Err(format!(concat!("`{}` is not a valid ", $what, " id"), s)),
                }
            }

            pub fn get(self) -> Uuid {
                self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                $name(id)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                Self::parse(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

uuid_id!(
    /// A restaurant's id.
    RestaurantId,
    "restaurant"
);
uuid_id!(
    /// A reservation's id.
    ReservationId,
    "reservation"
);
uuid_id!(
    /// A waitlist entry's id.
    EntryId,
    "waitlist entry"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_sort_in_the_order_they_were_made_as_the_store_keeps_them() {
        // SQLite keys rows by the hyphenated text: made later must sort later there, even
        // within one millisecond, and the bytes the DynamoDB shards read (14, 15) stay random.
        let ids: Vec<Uuid> = (0..5_000).map(|_| new_id()).collect();
        for w in ids.windows(2) {
            assert_eq!(w[1].get_version_num(), 7);
            assert!(
                w[0].to_string() < w[1].to_string(),
                "{} then {}",
                w[0],
                w[1]
            );
        }
        let lasts: std::collections::HashSet<u8> = ids.iter().map(|u| u.as_bytes()[15]).collect();
        assert!(
            lasts.len() > 200,
            "byte 15 took {} values of 256",
            lasts.len()
        );
        let secs = |u: &Uuid| u.get_timestamp().map(|t| t.to_unix().0).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(secs(&ids[0]) <= now && now - secs(&ids[0]) < 60);
    }

    #[test]
    fn ids_parse_only_hyphenated_uuids_and_print_them_back() {
        let s = "5d1e0f7a-93b2-4c61-8e0a-2b4c6d8e0f12";
        let id: RestaurantId = s.parse().unwrap();
        assert_eq!(id.to_string(), s);
        assert_eq!(serde_json::to_value(id).unwrap(), serde_json::json!(s));
        let back: ReservationId = serde_json::from_value(serde_json::json!(s)).unwrap();
        assert_eq!(Uuid::from(back), id.get());
        for bad in [
            "",
            "123",
            "nope",
            "5d1e0f7a93b24c618e0a2b4c6d8e0f12",
            "{5d1e0f7a-93b2-4c61-8e0a-2b4c6d8e0f12}",
        ] {
            assert!(RestaurantId::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            ReservationId::parse("x").unwrap_err(),
            "`x` is not a valid reservation id"
        );
    }
}
