-- Every MO the gateway acknowledges is stored here first (deliver_sm_resp only after the
-- insert), then handled; a redelivery inside the dedupe window is recognised by its hash.
CREATE TABLE sms_inbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    source       TEXT NOT NULL,
    destination  TEXT NOT NULL,
    body         TEXT NOT NULL,
    body_hash    TEXT NOT NULL,
    received_at  BIGINT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'received' CHECK (status IN ('received', 'handling', 'handled')),
    claimed_at   BIGINT,
    handled_at   BIGINT
);
CREATE INDEX sms_inbox_due ON sms_inbox (status, id);
CREATE INDEX sms_inbox_dedupe ON sms_inbox (source, body_hash, received_at);

ALTER TABLE outbox ADD COLUMN claimed_at BIGINT;
ALTER TABLE outbox ADD COLUMN last_error TEXT;
CREATE INDEX outbox_message_id ON outbox (message_id);

-- The SMSC's message id of each submitted part, and its delivery receipt.
CREATE TABLE outbox_parts (
    message_id    TEXT PRIMARY KEY,
    outbox_id     BIGINT NOT NULL REFERENCES outbox (id),
    part          BIGINT NOT NULL,
    stat          TEXT,
    receipt_at    BIGINT
);
CREATE INDEX outbox_parts_by_message ON outbox_parts (outbox_id);
