-- The hourly maintenance deletes settings_audit rows past the report
-- retention; this index finds them without reading the whole table.
CREATE INDEX settings_audit_changed_at ON settings_audit (changed_at);
