"""The spatial core of onemap: layers, stores, queries, access scopes and CRS. Knows nothing of HTTP."""
