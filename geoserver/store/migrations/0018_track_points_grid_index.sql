-- Every batch of GPS fixes maintains each index of track_points. No read uses the grid_code b-tree: replay
-- reads one patrol (track_points_patrol), the statistics a time range within the caller's townships (BRIN and
-- the township b-tree, ANDed), tiles and bbox queries the GiST; nothing filters fixes by grid (checked with
-- EXPLAIN ANALYZE on the sample county, docs/benchmarks.md). The township b-tree stays: the statistics and
-- a township's counts use it.
DROP INDEX IF EXISTS track_points_grid_code;
