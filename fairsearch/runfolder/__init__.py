"""A run folder as the later stages read it: its files, which are current, and the names a person reads."""
