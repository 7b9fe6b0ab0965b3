-- Restaurants keep their settings and tables as one JSON document; `revision` guards
-- read-modify-write of settings, `wide_version` is the version floor of every date.
CREATE TABLE restaurants (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    doc          TEXT NOT NULL,
    revision     INTEGER NOT NULL,
    wide_version INTEGER NOT NULL DEFAULT 0,
    created_ms   INTEGER NOT NULL
);

CREATE TABLE day_versions (
    restaurant_id TEXT NOT NULL REFERENCES restaurants(id),
    date          TEXT NOT NULL,
    version       INTEGER NOT NULL,
    PRIMARY KEY (restaurant_id, date)
) WITHOUT ROWID;

CREATE TABLE reservations (
    id            TEXT PRIMARY KEY,
    restaurant_id TEXT NOT NULL REFERENCES restaurants(id),
    table_id      TEXT NOT NULL,
    date          TEXT NOT NULL,
    time          TEXT NOT NULL,
    start_ms      INTEGER NOT NULL,
    end_ms        INTEGER NOT NULL,
    party_size    INTEGER NOT NULL,
    status        TEXT NOT NULL CHECK (status IN
                    ('held','confirmed','released','expired','seated','completed','cancelled','no_show')),
    expires_ms    INTEGER,
    guest         TEXT,
    notes         TEXT NOT NULL DEFAULT '',
    created_ms    INTEGER NOT NULL,
    updated_ms    INTEGER NOT NULL,
    -- A completed or no-show reservation may end where it starts: it then occupies nothing.
    CHECK (start_ms <= end_ms AND end_ms - start_ms <= 43200000)
);

CREATE INDEX reservations_by_day ON reservations (restaurant_id, date, start_ms);
CREATE INDEX reservations_by_table ON reservations (restaurant_id, table_id, start_ms);
CREATE INDEX reservations_held_by_expiry ON reservations (expires_ms) WHERE status = 'held';

-- The constraint that makes a double booking impossible to write: no two reservations in an
-- occupying status overlap on one table. A held reservation past `expires_at` must be marked
-- `expired` (in the same transaction) before its time can be taken. Reservations last at most
-- 12 h, which bounds the index range scanned.
CREATE TRIGGER reservations_no_overlap_insert
BEFORE INSERT ON reservations
WHEN NEW.status IN ('held','confirmed','seated','completed','no_show') AND NEW.start_ms < NEW.end_ms
BEGIN
    SELECT RAISE(ABORT, 'overlapping reservation')
    WHERE EXISTS (
        SELECT 1 FROM reservations r
        WHERE r.restaurant_id = NEW.restaurant_id AND r.table_id = NEW.table_id
          AND r.start_ms > NEW.start_ms - 43200000 AND r.start_ms < NEW.end_ms
          AND NEW.start_ms < r.end_ms AND r.start_ms < r.end_ms
          AND r.status IN ('held','confirmed','seated','completed','no_show'));
END;

CREATE TRIGGER reservations_no_overlap_update
BEFORE UPDATE OF status, table_id, start_ms, end_ms ON reservations
WHEN NEW.status IN ('held','confirmed','seated','completed','no_show') AND NEW.start_ms < NEW.end_ms
BEGIN
    SELECT RAISE(ABORT, 'overlapping reservation')
    WHERE EXISTS (
        SELECT 1 FROM reservations r
        WHERE r.restaurant_id = NEW.restaurant_id AND r.table_id = NEW.table_id
          AND r.id <> NEW.id
          AND r.start_ms > NEW.start_ms - 43200000 AND r.start_ms < NEW.end_ms
          AND NEW.start_ms < r.end_ms AND r.start_ms < r.end_ms
          AND r.status IN ('held','confirmed','seated','completed','no_show'));
END;

-- Only hashes of tokens are kept.
CREATE TABLE tokens (
    hash           TEXT PRIMARY KEY,
    restaurant_id  TEXT NOT NULL,
    reservation_id TEXT
) WITHOUT ROWID;

CREATE TABLE idempotency (
    key         TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('in_flight','done')),
    status      INTEGER,
    body        TEXT,
    created_ms  INTEGER NOT NULL
) WITHOUT ROWID;
