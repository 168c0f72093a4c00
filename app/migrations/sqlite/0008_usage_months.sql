-- How many usage records each number's month holds and the newest one's id, kept by the
-- database as records are added: every rating of the month so far (the home page, bills,
-- CXLL) asks whether the list it keeps still holds (service::month_events), and counting the
-- month's records for that read every one of them, hundreds by a month's end, on every view.
-- A trigger, so that every way records are added counts, in the same transaction.
CREATE TABLE usage_months (
    msisdn   TEXT NOT NULL,
    period   TEXT NOT NULL,
    records  BIGINT NOT NULL,
    newest   BIGINT NOT NULL,
    PRIMARY KEY (msisdn, period)
);
INSERT INTO usage_months (msisdn, period, records, newest)
    SELECT msisdn, period, COUNT(*), MAX(id) FROM usage_records GROUP BY msisdn, period;
CREATE TRIGGER usage_months_count AFTER INSERT ON usage_records BEGIN
    INSERT INTO usage_months (msisdn, period, records, newest)
        VALUES (NEW.msisdn, NEW.period, 1, NEW.id)
        ON CONFLICT (msisdn, period) DO UPDATE
        SET records = records + 1, newest = MAX(newest, excluded.newest);
END;
-- A record let go (should records ever be deleted) makes the count differ, so a list kept from
-- before is not taken for the month's.
CREATE TRIGGER usage_months_uncount AFTER DELETE ON usage_records BEGIN
    UPDATE usage_months SET records = records - 1
        WHERE msisdn = OLD.msisdn AND period = OLD.period;
END;
CREATE TRIGGER usage_records_keep_their_month BEFORE UPDATE OF msisdn, period ON usage_records BEGIN
    SELECT RAISE(ABORT, 'a usage record keeps its number and month');
END;

-- The plan in force in a period looks for a number's applied and pending plan changes
-- (billing::PLAN_IN); without this every view scanned the whole table.
CREATE INDEX plan_changes_by_subscriber ON plan_changes (msisdn, status, effective_period);
