-- Learn may refuse a manager on its root department, or answer and keep the
-- root as it was (which it does is not known). unkept_links is the key of
-- the links a department's last write did not leave in Learn: while the wanted
-- links stay the same they are not sent again. '' when Learn kept them.
ALTER TABLE sync_mappings ADD COLUMN unkept_links text NOT NULL DEFAULT '';
