"""Population training: many independent models of one shape trained as one batched model.

A population holds ``S`` members (seeds of one configuration, or configurations that share every
shape). Each member has its own slice of every weight tensor (``[S, ...]``), its own gradients,
its own Adam state, learning rate, weight decay, gradient-norm clip, step count and active flag,
so a member's trajectory equals the same model trained alone, up to float rounding
(``tests/test_population.py``). A member that diverges or stops is frozen; the others go on,
and ``keep`` (of the stacked modules and the optimiser) drops frozen members from the batch.

* :mod:`.layers`: stacked linear layers and the stacked MLP (``torch.baddbmm``);
* :mod:`.functional`: any ``nn.Module`` stacked with ``torch.func`` (``stack_module_state`` +
  ``functional_call`` + ``vmap``);
* :mod:`.optim`: :class:`PopulationAdam`, Adam with per-member hyper-parameters and a mask.

No Ray here.
"""

from __future__ import annotations

from fairsearch.population.functional import FunctionalPopulation
from fairsearch.population.layers import StackedLinear, StackedMLP, stack_mlps
from fairsearch.population.optim import PopulationAdam

__all__ = ["FunctionalPopulation", "PopulationAdam", "StackedLinear", "StackedMLP", "stack_mlps"]
