-- The SMSC's message ids are looked up in outbox_parts; this index on outbox only cost writes.
DROP INDEX outbox_message_id;
-- Work is looked up by status only while it is still to do: these indexes keep only that, so
-- finishing a message removes its entry instead of moving it, and they stay small. A query
-- that uses one repeats its condition (SQLite uses a partial index only when the query's
-- WHERE contains the index's own term).
DROP INDEX sms_inbox_due;
CREATE INDEX sms_inbox_due ON sms_inbox (status, id) WHERE status IN ('received', 'handling');
DROP INDEX outbox_due;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at) WHERE status IN ('queued', 'sending');
