-- Instants are BIGINT milliseconds since the epoch (UTC); periods are TEXT 'YYYY-MM' in
-- Asia/Shanghai; money is BIGINT fen. Flags are 0/1 integers. Both backends share this text.

CREATE TABLE products (
    code            TEXT PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('plan', 'addon')),
    family          TEXT NOT NULL,
    name_zh         TEXT NOT NULL,
    name_en         TEXT NOT NULL,
    monthly_fee     BIGINT NOT NULL CHECK (monthly_fee >= 0),
    voice_minutes   BIGINT NOT NULL DEFAULT 0,
    data_mb         BIGINT NOT NULL DEFAULT 0,
    sms_count       BIGINT NOT NULL DEFAULT 0,
    wlan_minutes    BIGINT NOT NULL DEFAULT 0,
    description_zh  TEXT NOT NULL,
    description_en  TEXT NOT NULL,
    sort_order      BIGINT NOT NULL DEFAULT 0,
    active          BIGINT NOT NULL DEFAULT 1
);

CREATE TABLE subscribers (
    msisdn                 TEXT PRIMARY KEY,
    name                   TEXT NOT NULL,
    id_card                TEXT NOT NULL,
    brand                  TEXT NOT NULL,
    status                 TEXT NOT NULL,
    tier                   TEXT NOT NULL,
    plan_code              TEXT NOT NULL REFERENCES products (code),
    password_hash          TEXT NOT NULL,
    must_change_password   BIGINT NOT NULL DEFAULT 1,
    failed_password_count  BIGINT NOT NULL DEFAULT 0,
    password_locked_until  BIGINT,
    alert_threshold        BIGINT NOT NULL DEFAULT 20000,
    marketing_consent      BIGINT NOT NULL DEFAULT 0,
    session_epoch          BIGINT NOT NULL DEFAULT 0,
    created_at             BIGINT NOT NULL
);
CREATE INDEX subscribers_by_name ON subscribers (name);

-- The balance row: cached sums of the ledger (kept equal in the same transaction) and the row
-- every money or points change updates first, so concurrent changes to one subscriber queue.
CREATE TABLE accounts (
    msisdn          TEXT PRIMARY KEY REFERENCES subscribers (msisdn),
    cash            BIGINT NOT NULL DEFAULT 0,
    gift            BIGINT NOT NULL DEFAULT 0 CHECK (gift >= 0),
    negative_since  BIGINT,
    version         BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE ledger (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    msisdn      TEXT NOT NULL REFERENCES subscribers (msisdn),
    cash_delta  BIGINT NOT NULL,
    gift_delta  BIGINT NOT NULL,
    reason      TEXT NOT NULL,
    memo        TEXT NOT NULL,
    reference   TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);
CREATE INDEX ledger_by_subscriber ON ledger (msisdn, created_at);

CREATE TABLE subscriptions (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    msisdn        TEXT NOT NULL REFERENCES subscribers (msisdn),
    product_code  TEXT NOT NULL REFERENCES products (code),
    start_period  TEXT NOT NULL,
    started_at    BIGINT NOT NULL,
    end_period    TEXT,
    cancelled_at  BIGINT
);
-- One live subscription of a product per number: a concurrent second order fails here.
CREATE UNIQUE INDEX subscriptions_one_live ON subscriptions (msisdn, product_code) WHERE end_period IS NULL;
CREATE INDEX subscriptions_by_subscriber ON subscriptions (msisdn);

CREATE TABLE plan_changes (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    msisdn            TEXT NOT NULL REFERENCES subscribers (msisdn),
    from_code         TEXT NOT NULL REFERENCES products (code),
    to_code           TEXT NOT NULL REFERENCES products (code),
    requested_period  TEXT NOT NULL,
    effective_period  TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('pending', 'withdrawn', 'applied')),
    created_at        BIGINT NOT NULL,
    decided_at        BIGINT
);
-- At most one change requested a month (a withdrawn one does not count).
CREATE UNIQUE INDEX plan_changes_one_a_month ON plan_changes (msisdn, requested_period) WHERE status <> 'withdrawn';

CREATE TABLE usage_records (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    msisdn         TEXT NOT NULL REFERENCES subscribers (msisdn),
    period         TEXT NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('call', 'sms', 'data', 'wlan')),
    started_at     BIGINT NOT NULL,
    other_party    TEXT,
    direction      TEXT,
    duration_secs  BIGINT NOT NULL DEFAULT 0,
    volume_kb      BIGINT NOT NULL DEFAULT 0,
    on_campus      BIGINT NOT NULL DEFAULT 0,
    reference      TEXT NOT NULL UNIQUE
);
CREATE INDEX usage_by_month ON usage_records (msisdn, period, started_at);

CREATE TABLE charges (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    msisdn      TEXT NOT NULL REFERENCES subscribers (msisdn),
    period      TEXT NOT NULL,
    category    TEXT NOT NULL CHECK (category IN ('plan', 'addon', 'overage', 'oneoff', 'discount')),
    item        TEXT NOT NULL,
    amount      BIGINT NOT NULL,
    reference   TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);
CREATE INDEX charges_by_month ON charges (msisdn, period);

CREATE TABLE bills (
    msisdn         TEXT NOT NULL REFERENCES subscribers (msisdn),
    period         TEXT NOT NULL,
    total          BIGINT NOT NULL,
    points_earned  BIGINT NOT NULL,
    closed_at      BIGINT NOT NULL,
    PRIMARY KEY (msisdn, period)
);

CREATE TABLE bill_items (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    msisdn    TEXT NOT NULL,
    period    TEXT NOT NULL,
    category  TEXT NOT NULL,
    item      TEXT NOT NULL,
    amount    BIGINT NOT NULL,
    FOREIGN KEY (msisdn, period) REFERENCES bills (msisdn, period)
);
CREATE INDEX bill_items_by_bill ON bill_items (msisdn, period);

CREATE TABLE month_closes (
    period       TEXT PRIMARY KEY,
    closed_at    BIGINT NOT NULL,
    bills        BIGINT NOT NULL
);

CREATE TABLE bill_alerts (
    msisdn   TEXT NOT NULL REFERENCES subscribers (msisdn),
    period   TEXT NOT NULL,
    sent_at  BIGINT NOT NULL,
    PRIMARY KEY (msisdn, period)
);

CREATE TABLE points_lots (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    msisdn       TEXT NOT NULL REFERENCES subscribers (msisdn),
    earned_year  BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    amount       BIGINT NOT NULL CHECK (amount > 0),
    remaining    BIGINT NOT NULL CHECK (remaining >= 0),
    source       TEXT NOT NULL,
    reference    TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL
);
CREATE INDEX points_lots_by_expiry ON points_lots (msisdn, expires_at, id);

CREATE TABLE points_history (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    msisdn      TEXT NOT NULL REFERENCES subscribers (msisdn),
    delta       BIGINT NOT NULL,
    reason      TEXT NOT NULL,
    memo        TEXT NOT NULL,
    reference   TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);
CREATE INDEX points_history_by_subscriber ON points_history (msisdn, created_at);

CREATE TABLE rewards (
    code        TEXT PRIMARY KEY,
    name_zh     TEXT NOT NULL,
    name_en     TEXT NOT NULL,
    cost        BIGINT NOT NULL CHECK (cost > 0),
    kind        TEXT NOT NULL CHECK (kind IN ('bill_credit', 'data_pack', 'gift')),
    credit_fen  BIGINT NOT NULL DEFAULT 0,
    data_mb     BIGINT NOT NULL DEFAULT 0,
    sort_order  BIGINT NOT NULL DEFAULT 0,
    active      BIGINT NOT NULL DEFAULT 1
);

CREATE TABLE redemptions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    msisdn       TEXT NOT NULL REFERENCES subscribers (msisdn),
    reward_code  TEXT NOT NULL REFERENCES rewards (code),
    points       BIGINT NOT NULL,
    period       TEXT NOT NULL,
    reference    TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL
);
CREATE INDEX redemptions_by_subscriber ON redemptions (msisdn, period);

CREATE TABLE promotions (
    code        TEXT PRIMARY KEY,
    name_zh     TEXT NOT NULL,
    name_en     TEXT NOT NULL,
    min_amount  BIGINT NOT NULL,
    gift        BIGINT NOT NULL,
    starts_at   BIGINT NOT NULL,
    ends_at     BIGINT NOT NULL,
    active      BIGINT NOT NULL DEFAULT 1
);

CREATE TABLE payment_orders (
    id             TEXT PRIMARY KEY,
    payer_msisdn   TEXT,
    target_msisdn  TEXT NOT NULL REFERENCES subscribers (msisdn),
    amount         BIGINT NOT NULL,
    promotion      TEXT,
    status         TEXT NOT NULL CHECK (status IN ('pending', 'paid', 'failed')),
    provider_txn   TEXT UNIQUE,
    created_at     BIGINT NOT NULL,
    settled_at     BIGINT
);

CREATE TABLE recharge_cards (
    serial      TEXT PRIMARY KEY,
    pin_digest  TEXT NOT NULL UNIQUE,
    value       BIGINT NOT NULL,
    used_by     TEXT,
    used_at     BIGINT,
    batch       TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Every credit to a balance from outside: the receipts and the top-up history.
CREATE TABLE topups (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    target_msisdn  TEXT NOT NULL REFERENCES subscribers (msisdn),
    payer_msisdn   TEXT,
    channel        TEXT NOT NULL CHECK (channel IN ('payment', 'card')),
    amount         BIGINT NOT NULL,
    gift           BIGINT NOT NULL DEFAULT 0,
    reference      TEXT NOT NULL UNIQUE,
    created_at     BIGINT NOT NULL
);
CREATE INDEX topups_by_target ON topups (target_msisdn, created_at);
CREATE INDEX topups_by_payer ON topups (payer_msisdn, created_at);

-- SMS to send, written in the same transaction as the change it reports.
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    msisdn           TEXT NOT NULL,
    kind             TEXT NOT NULL,
    body             TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sending', 'sent', 'failed')),
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    message_id       TEXT,
    created_at       BIGINT NOT NULL,
    sent_at          BIGINT,
    delivered_at     BIGINT
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_by_subscriber ON outbox (msisdn, created_at);

CREATE TABLE staff (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    username       TEXT NOT NULL UNIQUE,
    display_name   TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('agent', 'supervisor', 'admin')),
    password_hash  TEXT NOT NULL,
    totp_secret    TEXT,
    msisdn         TEXT,
    disabled       BIGINT NOT NULL DEFAULT 0,
    created_at     BIGINT NOT NULL
);
CREATE INDEX staff_by_msisdn ON staff (msisdn);

CREATE TABLE impersonations (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    staff_id     BIGINT NOT NULL REFERENCES staff (id),
    msisdn       TEXT NOT NULL REFERENCES subscribers (msisdn),
    reason       TEXT NOT NULL,
    client_addr  TEXT NOT NULL,
    started_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    ended_at     BIGINT,
    ended_by     BIGINT,
    end_reason   TEXT
);
-- No nesting: a staff member has at most one open impersonation.
CREATE UNIQUE INDEX impersonations_one_open ON impersonations (staff_id) WHERE ended_at IS NULL;

CREATE TABLE audit_log (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    at                BIGINT NOT NULL,
    staff_id          BIGINT,
    staff_username    TEXT,
    impersonation_id  BIGINT,
    msisdn            TEXT,
    action            TEXT NOT NULL,
    outcome           TEXT NOT NULL,
    client_addr       TEXT NOT NULL,
    detail            TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_by_time ON audit_log (at);
CREATE INDEX audit_by_subscriber ON audit_log (msisdn, at);
CREATE INDEX audit_by_staff ON audit_log (staff_id, at);

-- The audit log is append-only: the database itself refuses to change or remove a row.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
-- A closed bill is immutable.
CREATE TRIGGER bills_no_update BEFORE UPDATE ON bills
BEGIN SELECT RAISE(ABORT, 'bills are immutable'); END;
CREATE TRIGGER bill_items_no_update BEFORE UPDATE ON bill_items
BEGIN SELECT RAISE(ABORT, 'bills are immutable'); END;
