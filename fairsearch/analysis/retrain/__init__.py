"""The retrain stage: the candidates and the front over fresh seeds, saved and summarised."""
