"""After the search: Pareto sets and the pick, retraining over seeds, independent audits."""
