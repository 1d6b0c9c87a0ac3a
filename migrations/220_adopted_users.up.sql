-- adopted: the mapping linked an employee to a Learn user the app did not
-- create (found by login or e-mail). Such a user keeps Learn's login and
-- e-mail while it is linked: the address is the employee's to edit, and the
-- Learn user may be someone else's (docs/learn-api.md, "Roles"). Rows from
-- before this column read false: their login follows the employee's e-mail,
-- as it did.
ALTER TABLE sync_mappings ADD COLUMN adopted boolean NOT NULL DEFAULT false;
