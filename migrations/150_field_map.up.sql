-- The admin's field mapping: a JSON object from Learn profile field name to
-- the Bitrix24 user field that fills it ("" for none). NULL means the portal
-- never changed it, and the fixed mapping applies.
ALTER TABLE portal_settings ADD COLUMN field_map jsonb
    CHECK (field_map IS NULL OR jsonb_typeof(field_map) = 'object');
