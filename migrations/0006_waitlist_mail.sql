-- The address an offer was mailed to (null when it was not mailed): when that offer lapses, the
-- entry's lapse writes a "you've lost the offer" mail in the same transaction.
ALTER TABLE waitlist ADD COLUMN mail_to TEXT;
