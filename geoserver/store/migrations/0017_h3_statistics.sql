-- Heat maps group by one H3 cell, substring(h3_cells from 8R+1 for 8). Sampled at the default statistics
-- target, PostgreSQL guesses some 160,000 distinct cells for the 9,646 of 10^6 events at resolution 8, so it
-- plans for a big hash or sort, and for a township leader's scope (439,595 of the bench's 10^6 events) a
-- serial bitmap scan instead of the parallel scan and partial aggregate: 1,068-1,376 ms in EXPLAIN ANALYZE on
-- the loaded 2-core machine. Statistics on the cell expressions at the resolutions heat maps and their tiles
-- use (6-10), from a larger sample (300,000 rows), put the estimate at 9,503: the leader's plan becomes the
-- parallel one, 244-413 ms. Statistics only: no write costs more; ANALYZE reads the larger sample.
CREATE STATISTICS IF NOT EXISTS events_h3_r6 ON (substring(h3_cells from 49 for 8)) FROM events;
ALTER STATISTICS events_h3_r6 SET STATISTICS 1000;
CREATE STATISTICS IF NOT EXISTS events_h3_r7 ON (substring(h3_cells from 57 for 8)) FROM events;
ALTER STATISTICS events_h3_r7 SET STATISTICS 1000;
CREATE STATISTICS IF NOT EXISTS events_h3_r8 ON (substring(h3_cells from 65 for 8)) FROM events;
ALTER STATISTICS events_h3_r8 SET STATISTICS 1000;
CREATE STATISTICS IF NOT EXISTS events_h3_r9 ON (substring(h3_cells from 73 for 8)) FROM events;
ALTER STATISTICS events_h3_r9 SET STATISTICS 1000;
CREATE STATISTICS IF NOT EXISTS events_h3_r10 ON (substring(h3_cells from 81 for 8)) FROM events;
ALTER STATISTICS events_h3_r10 SET STATISTICS 1000;
CREATE STATISTICS IF NOT EXISTS alarms_h3_r6 ON (substring(h3_cells from 49 for 8)) FROM alarms;
ALTER STATISTICS alarms_h3_r6 SET STATISTICS 1000;
CREATE STATISTICS IF NOT EXISTS alarms_h3_r7 ON (substring(h3_cells from 57 for 8)) FROM alarms;
ALTER STATISTICS alarms_h3_r7 SET STATISTICS 1000;
CREATE STATISTICS IF NOT EXISTS alarms_h3_r8 ON (substring(h3_cells from 65 for 8)) FROM alarms;
ALTER STATISTICS alarms_h3_r8 SET STATISTICS 1000;
CREATE STATISTICS IF NOT EXISTS alarms_h3_r9 ON (substring(h3_cells from 73 for 8)) FROM alarms;
ALTER STATISTICS alarms_h3_r9 SET STATISTICS 1000;
CREATE STATISTICS IF NOT EXISTS alarms_h3_r10 ON (substring(h3_cells from 81 for 8)) FROM alarms;
ALTER STATISTICS alarms_h3_r10 SET STATISTICS 1000;
ANALYZE events;
ANALYZE alarms;
