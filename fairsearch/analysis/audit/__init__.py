"""The audit stage: independent probes, the floor, dependence and group metrics on held-out rows."""
