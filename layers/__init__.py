"""The governance domain: one module per kind of thing, each declaring its layers and rules."""
