-- 0010: heat maps. Each event and alarm keeps the H3 cells of its point at resolutions 0-15 (sixteen
-- big-endian 64-bit cell ids, geoserver/store/h3cells.py), written by the store with the feature, so a heat
-- map is one GROUP BY substring(h3_cells ...). Existing rows are filled by `onemap db upgrade` (in Python:
-- there is no h3 extension here); rows another program writes are filled on the next heat-map read, found
-- through the small partial indexes below.
ALTER TABLE events ADD COLUMN IF NOT EXISTS h3_cells bytea;
ALTER TABLE alarms ADD COLUMN IF NOT EXISTS h3_cells bytea;
CREATE INDEX IF NOT EXISTS events_h3_cells_missing ON events (fid) WHERE h3_cells IS NULL;
CREATE INDEX IF NOT EXISTS alarms_h3_cells_missing ON alarms (fid) WHERE h3_cells IS NULL;

-- What the planner knows of each resolution's cells (how many distinct): without it PostgreSQL guesses a
-- group per row and plans a heat map of 10^6 events without parallel workers, sorting on disk.
DO $$
BEGIN
    FOR r IN 0..15 LOOP
        EXECUTE format('CREATE STATISTICS IF NOT EXISTS %I ON (substring(h3_cells from %s for 8)) FROM events',
                       'events_h3_r' || r, r * 8 + 1);
        EXECUTE format('CREATE STATISTICS IF NOT EXISTS %I ON (substring(h3_cells from %s for 8)) FROM alarms',
                       'alarms_h3_r' || r, r * 8 + 1);
    END LOOP;
END $$;
