-- A claimed ('sending') message's next_attempt_at is now when its claim runs out, so that
-- the expired claims are a range of the index outbox_due like the due queued messages
-- (Hall::claim_outbox): found by claimed_at, every claim read every message in flight.
UPDATE outbox SET next_attempt_at = claimed_at + 60000
WHERE status = 'sending' AND claimed_at IS NOT NULL;
