//! `--demo`: a restaurant to try tablecast with, seeded when the store has none.
use crate::booking::Booking;
use crate::domain::Restaurant;
use uuid::Uuid;

/// The demo restaurant's id, the same on every instance: of instances seeding one empty store
/// at once, only one creates it (the store refuses a second restaurant with its id).
const DEMO_ID: Uuid = Uuid::from_u128(0x0000_0000_0000_7000_8000_0000_0000_de70);

/// How many times the demo restaurant's creation is tried.
const SEED_ATTEMPTS: u64 = 5;

pub async fn seed(booking: &Booking, base: &str) -> anyhow::Result<()> {
    if !booking.list_restaurants().await?.is_empty() {
        return seeded_already(base);
    }
    let mut attempt = 0;
    let (r, token) = loop {
        match booking.create_restaurant(demo(DEMO_ID)?).await {
            Ok(created) => break created,
            Err(e) => {
                // Refused because another instance created it meanwhile: seeded. Otherwise a
                // failure the next attempt may not meet (the store busy with instances
                // starting together) is tried again, a few times, before it stops the start.
                let listed = booking.list_restaurants().await?;
                if listed.iter().any(|x| x.id == DEMO_ID) {
                    return seeded_already(base);
                }
                attempt += 1;
                if attempt == SEED_ATTEMPTS {
                    return Err(e.into());
                }
                tokio::time::sleep(std::time::Duration::from_millis(200 * attempt)).await;
            }
        }
    };
    crate::say!("demo restaurant \"{}\": id {}", r.name, r.id);
    crate::say!("demo staff token: {token}");
    crate::say!("diner app: {base}/?restaurant={}", r.id);
    crate::say!("staff dashboard: {base}/staff?restaurant={}", r.id);
    crate::say!("open {base}/v1/restaurants/{}", r.id);
    crate::say!(
        "combination c34 joins T3+T4 for 5–8 guests; pacing: 12 covers and 4 parties per 30 minutes"
    );
    crate::say!(
        "availability: {base}/v1/restaurants/{}/availability?date=YYYY-MM-DD&party_size=2",
        r.id
    );
    Ok(())
}

fn seeded_already(base: &str) -> anyhow::Result<()> {
    crate::say!("demo: the store already has restaurants; nothing seeded");
    crate::say!("open {base}/v1/restaurants");
    Ok(())
}

/// The demo restaurant, with `id`.
fn demo(id: Uuid) -> anyhow::Result<Restaurant> {
    Ok(serde_json::from_value(serde_json::json!({
        "id": id, "name": "Chez Rust", "timezone": "Europe/Paris",
        "slot_minutes": 15, "hold_seconds": 300, "booking_horizon_days": 60,
        "turn_minutes": [{"max_party": 2, "minutes": 90}, {"max_party": 4, "minutes": 120},
                         {"max_party": null, "minutes": 150}],
        "hours": [{"days": ["tue","wed","thu","fri","sat","sun"], "open": "12:00", "close": "14:30"},
                  {"days": ["mon","tue","wed","thu","fri","sat","sun"], "open": "18:00", "close": "23:00"}],
        "closed_dates": [],
        "tables": [
            {"id": "t1", "label": "T1", "min_party": 1, "max_party": 2, "area": "window"},
            {"id": "t2", "label": "T2", "min_party": 1, "max_party": 2, "area": "window"},
            {"id": "t3", "label": "T3", "min_party": 2, "max_party": 4, "area": "main"},
            {"id": "t4", "label": "T4", "min_party": 2, "max_party": 4, "area": "main"},
            {"id": "t5", "label": "T5", "min_party": 4, "max_party": 8, "area": "terrace"}
        ],
        // T3 and T4 pushed together seat a party of 5 to 8 (after T5, the single table).
        "combinations": [{"id": "c34", "tables": ["t3", "t4"], "min_party": 5, "max_party": 8}],
        // At most 12 covers and 4 parties may start in each half hour from the hour.
        "pacing": {"window_minutes": 30, "max_covers": 12, "max_parties": 4}
    }))?)
}
