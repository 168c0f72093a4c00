-- How many usage records each number's month holds and the newest one's id, kept by the
-- database as records are added: every rating of the month so far (the home page, bills,
-- CXLL) asks whether the list it keeps still holds (service::month_events), and counting the
-- month's records for that read every one of them, hundreds by a month's end, on every view.
-- A trigger, so that every way records are added counts, in the same transaction. (A record
-- with a lower id committed after a higher one still changes the count, so the key moves.)
CREATE TABLE usage_months (
    msisdn   TEXT NOT NULL,
    period   TEXT NOT NULL,
    records  BIGINT NOT NULL,
    newest   BIGINT NOT NULL,
    PRIMARY KEY (msisdn, period)
);
INSERT INTO usage_months (msisdn, period, records, newest)
    SELECT msisdn, period, COUNT(*), MAX(id) FROM usage_records GROUP BY msisdn, period;
CREATE FUNCTION usage_months_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO usage_months (msisdn, period, records, newest)
        VALUES (NEW.msisdn, NEW.period, 1, NEW.id)
        ON CONFLICT (msisdn, period) DO UPDATE
        SET records = usage_months.records + 1,
            newest = GREATEST(usage_months.newest, EXCLUDED.newest);
    RETURN NULL;
END
$$;
CREATE TRIGGER usage_months_count AFTER INSERT ON usage_records
    FOR EACH ROW EXECUTE FUNCTION usage_months_count();
-- A record let go (should records ever be deleted) makes the count differ, so a list kept from
-- before is not taken for the month's.
CREATE FUNCTION usage_months_uncount() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE usage_months SET records = records - 1
        WHERE msisdn = OLD.msisdn AND period = OLD.period;
    RETURN NULL;
END
$$;
CREATE TRIGGER usage_months_uncount AFTER DELETE ON usage_records
    FOR EACH ROW EXECUTE FUNCTION usage_months_uncount();
CREATE FUNCTION usage_records_keep_their_month() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a usage record keeps its number and month';
END
$$;
CREATE TRIGGER usage_records_keep_their_month BEFORE UPDATE OF msisdn, period ON usage_records
    FOR EACH ROW EXECUTE FUNCTION usage_records_keep_their_month();

-- The plan in force in a period looks for a number's applied and pending plan changes
-- (billing::PLAN_IN); without this every view scanned the whole table.
CREATE INDEX plan_changes_by_subscriber ON plan_changes (msisdn, status, effective_period);
