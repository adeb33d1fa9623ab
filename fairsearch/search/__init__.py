"""The search stage: Optuna sampling, Ray lanes, the run folder's trial tables."""
