-- Limits and bounded cost. Every request-path query of a reservation carries the predicate of
-- one of the partial indexes below, so what it scans is the live data of its tables and date,
-- never the history of released, expired or cancelled reservations.

-- The client a hold was taken for (a stable hash of its address), counted by the live-hold cap.
ALTER TABLE reservations ADD COLUMN client_key TEXT;

-- Live holds of one client: the cap is decided by counting these in the hold's own write.
CREATE INDEX reservations_live_holds_by_client ON reservations (client_key, expires_ms)
    WHERE status = 'held' AND client_key IS NOT NULL;

-- Occupying reservations by table and start: hold decisions, the fast loser and the overlap
-- triggers. Replaces `reservations_by_table`, which indexed every status.
CREATE INDEX reservations_live_by_table ON reservations (restaurant_id, table_id, start_ms)
    WHERE status IN ('held','confirmed','seated','completed','no_show');
DROP INDEX reservations_by_table;

-- What a day view shows (availability, live reloads, the floor): everything of the date but
-- released and expired holds. `reservations_by_day` stays for the staff list of every status.
CREATE INDEX reservations_shown_by_day ON reservations (restaurant_id, date, start_ms)
    WHERE status NOT IN ('released','expired');

-- Retention: dead holds oldest first, tokens by reservation, idempotency records by age.
CREATE INDEX reservations_dead_by_change ON reservations (updated_ms)
    WHERE status IN ('released','expired');
CREATE INDEX tokens_by_reservation ON tokens (reservation_id) WHERE reservation_id IS NOT NULL;
CREATE INDEX idempotency_by_age ON idempotency (created_ms);

-- The restaurant-wide version bump reads the highest date version without scanning every date.
CREATE INDEX day_versions_by_version ON day_versions (restaurant_id, version);

-- The overlap triggers again, unchanged in meaning; their `EXISTS` names the occupying statuses
-- exactly as `reservations_live_by_table` does, so it is answered from that index.
DROP TRIGGER reservations_no_overlap_insert;
DROP TRIGGER reservations_no_overlap_update;

CREATE TRIGGER reservations_no_overlap_insert
BEFORE INSERT ON reservations
WHEN NEW.status IN ('held','confirmed','seated','completed','no_show') AND NEW.start_ms < NEW.end_ms
BEGIN
    SELECT RAISE(ABORT, 'overlapping reservation')
    WHERE EXISTS (
        SELECT 1 FROM reservations r INDEXED BY reservations_live_by_table
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
        SELECT 1 FROM reservations r INDEXED BY reservations_live_by_table
        WHERE r.restaurant_id = NEW.restaurant_id AND r.table_id = NEW.table_id
          AND r.id <> NEW.id
          AND r.start_ms > NEW.start_ms - 43200000 AND r.start_ms < NEW.end_ms
          AND NEW.start_ms < r.end_ms AND r.start_ms < r.end_ms
          AND r.status IN ('held','confirmed','seated','completed','no_show'));
END;
