-- When a message was delivered is derived from its parts' receipts
-- (Hall::outbox_delivered_at): writing it on the message with every receipt cost the gateway
-- an update a message, for a value nothing but an occasional look reads.
ALTER TABLE outbox DROP COLUMN delivered_at;
