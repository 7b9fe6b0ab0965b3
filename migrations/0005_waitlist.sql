-- Waitlist entries: one row per diner in a restaurant/date's queue. The queue order is
-- (created_ms, id). An offer is a held reservation named by offer_reservation_id; the entry
-- keeps naming it once booked, lapsed or left. Only the token's hash is kept.
CREATE TABLE waitlist (
    id                   TEXT PRIMARY KEY,
    restaurant_id        TEXT NOT NULL,
    date                 TEXT NOT NULL,
    party_size           INTEGER NOT NULL,
    from_time            TEXT NOT NULL,
    to_time              TEXT NOT NULL,
    status               TEXT NOT NULL
                         CHECK (status IN ('waiting','offered','booked','lapsed','left')),
    offer_reservation_id TEXT,
    offer_time           TEXT,
    offer_expires_ms     INTEGER,
    guest                TEXT NOT NULL,
    token_hash           TEXT NOT NULL UNIQUE,
    created_ms           INTEGER NOT NULL,
    updated_ms           INTEGER NOT NULL
) WITHOUT ROWID;

-- A date's queue, in order.
CREATE INDEX waitlist_queue ON waitlist (restaurant_id, date, created_ms, id);
-- The reconcile loop: dates with waiting entries.
CREATE INDEX waitlist_waiting ON waitlist (date, restaurant_id, created_ms) WHERE status = 'waiting';
-- The entry of an offered reservation (confirm, release and expiry follow it).
CREATE INDEX waitlist_by_offer ON waitlist (offer_reservation_id)
    WHERE offer_reservation_id IS NOT NULL;
-- Offers due to lapse.
CREATE INDEX waitlist_offered ON waitlist (offer_expires_ms) WHERE status = 'offered';
-- Retention: finished entries by last change, and every entry by date.
CREATE INDEX waitlist_finished ON waitlist (updated_ms) WHERE status IN ('lapsed','left');
CREATE INDEX waitlist_by_date ON waitlist (date);
