"""Our own OpenAPI 3.0 document: FastAPI's route table, an OGC layer over it, and schemas written by us."""
