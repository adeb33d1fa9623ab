"""Examples of bringing your own model to fairsearch (named in a spec by import path)."""
