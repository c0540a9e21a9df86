"""Versioned SQL migrations of the PostGIS schema: `NNNN_name.sql`, applied in order by migrate.py."""
