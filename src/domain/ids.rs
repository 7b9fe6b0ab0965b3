//! Ids of restaurants and reservations: UUIDs in their hyphenated form, parsed once at the edge.
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

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
