-- Expired MO claims are found by when they were claimed (Hall::claim_mo): with the claim time
-- in the index they are one range of it, read up to the limit, where before every MO in
-- flight was read to find them. An MO waiting to be claimed has no claim time, so those are
-- still in id order.
UPDATE sms_inbox SET claimed_at = NULL WHERE status = 'received';
DROP INDEX sms_inbox_due;
CREATE INDEX sms_inbox_due ON sms_inbox (status, claimed_at, id) WHERE status IN ('received', 'handling');
