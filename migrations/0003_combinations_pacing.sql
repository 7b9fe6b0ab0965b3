-- Combinations and pacing. A reservation may occupy several tables (a combination of them); its
-- pacing window counts the reservations that start in it.

-- Every table a reservation occupies, sorted, as a JSON array; NULL for rows written before
-- combinations existed (they occupy `table_id` alone). `table_id` stays the first member.
ALTER TABLE reservations ADD COLUMN table_ids TEXT;
-- The combination it is seated on; NULL for a single table.
ALTER TABLE reservations ADD COLUMN combination_id TEXT;

-- One row per table a reservation occupies, present exactly while the reservation is in an
-- occupying status (held, confirmed, seated, completed, no_show). Every overlap check and every
-- hold decision reads this table, so a hold on `t3` and a hold on a combination `t3+t4` meet
-- on the row of `t3`. A held row past `expires_ms` is free for readers; the writer marks such a
-- hold expired (which removes its rows) before it takes the time.
CREATE TABLE reservation_tables (
    reservation_id TEXT NOT NULL,
    restaurant_id  TEXT NOT NULL,
    table_id       TEXT NOT NULL,
    start_ms       INTEGER NOT NULL,
    end_ms         INTEGER NOT NULL,
    expires_ms     INTEGER,
    PRIMARY KEY (reservation_id, table_id)
) WITHOUT ROWID;

CREATE INDEX reservation_tables_by_table
    ON reservation_tables (restaurant_id, table_id, start_ms);

-- The occupying reservations as they are today.
INSERT INTO reservation_tables (reservation_id, restaurant_id, table_id, start_ms, end_ms, expires_ms)
    SELECT id, restaurant_id, table_id, start_ms, end_ms, expires_ms FROM reservations
    WHERE status IN ('held','confirmed','seated','completed','no_show');

-- Kept in step with the reservations by triggers, whatever statement changes them.
CREATE TRIGGER reservation_tables_on_insert
AFTER INSERT ON reservations
WHEN NEW.status IN ('held','confirmed','seated','completed','no_show')
BEGIN
    INSERT INTO reservation_tables (reservation_id, restaurant_id, table_id, start_ms, end_ms, expires_ms)
        SELECT NEW.id, NEW.restaurant_id, value, NEW.start_ms, NEW.end_ms, NEW.expires_ms
        FROM json_each(COALESCE(NEW.table_ids, json_array(NEW.table_id)));
END;

CREATE TRIGGER reservation_tables_on_update
AFTER UPDATE OF status, start_ms, end_ms, expires_ms ON reservations
BEGIN
    DELETE FROM reservation_tables WHERE reservation_id = NEW.id
        AND NEW.status NOT IN ('held','confirmed','seated','completed','no_show');
    UPDATE reservation_tables SET start_ms = NEW.start_ms, end_ms = NEW.end_ms,
        expires_ms = NEW.expires_ms
        WHERE reservation_id = NEW.id
          AND NEW.status IN ('held','confirmed','seated','completed','no_show');
END;

CREATE TRIGGER reservation_tables_on_delete
AFTER DELETE ON reservations
BEGIN
    DELETE FROM reservation_tables WHERE reservation_id = OLD.id;
END;

-- The constraint that makes a double booking impossible to write, now per member table: no two
-- occupying reservations overlap on any table. It replaces the per-reservation triggers, which
-- saw only the first table of a combination.
DROP TRIGGER reservations_no_overlap_insert;
DROP TRIGGER reservations_no_overlap_update;

CREATE TRIGGER reservation_tables_no_overlap
BEFORE INSERT ON reservation_tables
WHEN NEW.start_ms < NEW.end_ms
BEGIN
    SELECT RAISE(ABORT, 'overlapping reservation')
    WHERE EXISTS (
        SELECT 1 FROM reservation_tables r
        WHERE r.restaurant_id = NEW.restaurant_id AND r.table_id = NEW.table_id
          AND r.start_ms > NEW.start_ms - 43200000 AND r.start_ms < NEW.end_ms
          AND NEW.start_ms < r.end_ms AND r.start_ms < r.end_ms);
END;

-- Pacing: the reservations of one restaurant/date that count, by local start time.
CREATE INDEX reservations_pacing ON reservations (restaurant_id, date, time)
    WHERE status IN ('held','confirmed','seated','completed','no_show');
