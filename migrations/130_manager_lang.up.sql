-- The console language a manager chose; NULL: none chosen, the console
-- follows the browser's Accept-Language. Activation e-mails to a manager
-- account use it too.
ALTER TABLE managers ADD COLUMN lang text CHECK (lang IN ('en', 'ru'));
