-- Retention keeps a booked waitlist entry: it is the diner's way to the confirmed reservation
-- it became (its token reads that reservation), a business record like the reservation itself.
-- Entries of dates past the cut-off are found through an index without the booked ones, so the
-- job never walks the history of booked entries again.
DROP INDEX waitlist_by_date;
CREATE INDEX waitlist_unbooked_by_date ON waitlist (date) WHERE status <> 'booked';
