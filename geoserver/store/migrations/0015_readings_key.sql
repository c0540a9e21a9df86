-- A reading's natural key (layers/ingest.py): one site's metric at one instant is stored once, so a reading
-- sent again (an HTTP retry, an MQTT redelivery after a crash before the acknowledgement) is a duplicate.
-- Readings stored twice before this migration keep their first copy.
DELETE FROM readings r USING readings o
 WHERE r.site_id = o.site_id AND r.metric = o.metric AND r.observed_at = o.observed_at AND r.fid > o.fid;
CREATE UNIQUE INDEX readings_natural_key ON readings (site_id, metric, observed_at);
