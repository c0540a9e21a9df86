"""The only place that knows HTTP: the app factory, routers, auth, problem responses."""
