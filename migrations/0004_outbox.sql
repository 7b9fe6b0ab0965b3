-- The transactional outbox: mail written in the same transaction as the decision that causes
-- it, delivered later by the mail sender. `next_ms` is when a pending record is next due: a
-- claim moves it to the end of the claimer's lease, a failed attempt to its next retry.
CREATE TABLE outbox (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    recipient   TEXT NOT NULL,
    -- The reservation as the decision left it (JSON).
    reservation TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending','sent','failed')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_ms     INTEGER NOT NULL,
    created_ms  INTEGER NOT NULL,
    settled_ms  INTEGER
);

-- What the sender claims: pending records by due time. Sent ones never slow it down.
CREATE INDEX outbox_due ON outbox (next_ms, created_ms) WHERE state = 'pending';
-- Retention: settled records oldest first.
CREATE INDEX outbox_settled ON outbox (settled_ms) WHERE state <> 'pending';
