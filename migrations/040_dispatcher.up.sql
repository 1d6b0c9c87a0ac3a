-- The dispatcher's watermark: the time up to which slots have been
-- dispatched. A tick dispatches the slots in (last_tick_at, now], so a slot
-- runs once however many ticks or processes there are, a slot missed during
-- downtime runs once when the service is back, and a schedule changed or a
-- portal activated after its slot time waits for the next slot.
CREATE TABLE dispatcher_state (
    id           boolean PRIMARY KEY DEFAULT true CHECK (id),
    last_tick_at timestamptz NOT NULL
);

-- Sync health, shown in the iframe status panel and the manager console.
ALTER TABLE portals
    ADD COLUMN sync_failures    integer NOT NULL DEFAULT 0,
    ADD COLUMN needs_attention  boolean NOT NULL DEFAULT false,
    ADD COLUMN last_sync_error  text NOT NULL DEFAULT '',
    ADD COLUMN activated_at     timestamptz;

-- The dispatcher reads only portals that can sync.
CREATE INDEX portals_syncable_idx ON portals (id)
    WHERE install_state = 'installed' AND activation_state = 'active' AND NOT needs_reconnect;
