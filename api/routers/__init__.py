"""HTTP routers, one module per group of paths."""
