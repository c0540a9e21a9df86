-- Point layers that are tiled often and written rarely (Layer.mercator_copy) keep their geometry in Web
-- Mercator too, computed by PostgreSQL on every insert and update. WebMercatorQuad tiles read it instead of
-- calling ST_Transform on every row of every tile: on the sample's event tiles (z12-16) that transform was
-- half of the statement's time (docs/benchmarks.md). GPS fixes, positions and readings are not copied: they
-- take a stream of writes and are tiled only at close zooms.
ALTER TABLE events ADD COLUMN geom_3857 geometry(Point, 3857) GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED;
ALTER TABLE pois ADD COLUMN geom_3857 geometry(Point, 3857) GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED;
ALTER TABLE temples ADD COLUMN geom_3857 geometry(Point, 3857) GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED;
ALTER TABLE monitoring_sites ADD COLUMN geom_3857 geometry(Point, 3857) GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED;
