-- A delivery receipt can arrive before the hall has recorded its part's message id (the SMSC
-- reports each part as soon as it accepts it; the message ids are recorded once every part is
-- accepted). Such a receipt waits here and is applied when the parts are recorded — by
-- whichever gateway instance records them.
CREATE TABLE early_receipts (
    message_id   TEXT PRIMARY KEY,
    stat         TEXT NOT NULL,
    received_at  BIGINT NOT NULL
);
CREATE INDEX early_receipts_by_age ON early_receipts (received_at);
