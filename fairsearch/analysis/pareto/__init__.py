"""The Pareto stage: non-dominated sets, hypervolume, the selection rule and the candidates it proposes."""
