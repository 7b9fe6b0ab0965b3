-- Every hold wrote an entry in `reservations_live_by_table`, which no hold reads any more: since
-- migration 0003 the decisions and the overlap trigger read `reservation_tables`. The rare
-- settings guards that still look for a table's live reservations read `reservations_pacing`
-- (the same occupying statuses, by restaurant) instead.
DROP INDEX reservations_live_by_table;
