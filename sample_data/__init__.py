"""The deterministic generator of the sample county."""
