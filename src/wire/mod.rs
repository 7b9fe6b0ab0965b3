//! The wire: typed bodies and frames shared by the HTTP API and the live socket. Depends only on
//! the domain; every JSON the server sends is one of these types.
pub mod availability;
pub mod floor;
pub mod frames;
pub mod int;
pub mod problem;
pub mod reservation;
pub mod restaurant;
pub mod waitlist;

pub use availability::{AvailabilityBody, SlotBody};
pub use floor::{FloorBody, FloorTable, PacingWindow};
pub use frames::{ClientFrame, HoldInput};
pub use problem::Problem;
pub use reservation::{HeldReservation, ReservationList, ReservationView};
pub use restaurant::{
    CombinationDoc, CreatedRestaurant, PacingDoc, RestaurantDoc, RestaurantList, RestaurantSummary,
    TableDoc,
};
pub use waitlist::{JoinedEntry, OfferBody, WaitlistEntryView, WaitlistList};
