"""Population training: a member equals the same configuration and seed trained alone, and a
member that diverges leaves its neighbours unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from fairsearch.families.wrapper import population as wrapper_population
from fairsearch.families.wrapper.model import FairModelWrapper
from fairsearch.families.wrapper.population import MemberSpec, fit_wrapper_population
from fairsearch.measures.batched import population_dependence
from fairsearch.measures.dependence import dependence_loss
from fairsearch.nets import DivergenceError, MemberStopped, build_mlp
from fairsearch.population import PopulationAdam, StackedMLP


def _data(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    q = rng.integers(0, 2, n)
    X = np.c_[rng.normal(size=(n, 3)), q].astype(np.float32)
    y = (np.tanh(X[:, 0]) + 0.5 * X[:, 1] + 3 * q + 0.1 * rng.normal(size=n)).astype(np.float32)
    return X, y, q


def _mlp(seed: int, hidden: str = "16-16", d_in: int = 4, d_out: int = 1) -> nn.Sequential:
    torch.manual_seed(seed)
    return build_mlp(d_in, d_out, hidden, "relu")


class _Residual(nn.Module):  # not a plain Sequential: trained through torch.func
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 8), nn.Linear(8, 1)
        self.skip = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.tanh(self.a(x))) + self.skip(x)


def _alone(module: nn.Module, m: MemberSpec, X, y, q, **kw) -> FairModelWrapper:
    w = FairModelWrapper(module, mu=m.mu, dependence=kw.get("dependence", "cka"), device="cpu",
                         sigma_f=m.sigma_f, sigma_q=m.sigma_q)  # fmt: skip
    return w.fit(X, y, q=q, epochs=kw.get("epochs", 5), batch_size=kw.get("batch_size", 64),
                 lr=m.lr, weight_decay=m.weight_decay, grad_clip=m.grad_clip, seed=m.seed)


def _params(module: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in module.parameters()])


@pytest.mark.parametrize("factory", ["mlp", "functional"])
def test_member_equals_the_same_model_trained_alone(factory: str) -> None:
    X, y, q = _data()
    # members differ in seed and in every per-member parameter (as configurations of one shape)
    settings = [dict(seed=0, mu=0.0, lr=3e-3), dict(seed=1, mu=2.0, lr=1e-2, weight_decay=1e-3,
                                                    sigma_f=0.5),
                dict(seed=2, mu=8.0, lr=3e-3, grad_clip=0.5, sigma_q=2.0)]  # fmt: skip

    def build(seed: int) -> nn.Module:
        if factory == "mlp":
            return _mlp(seed)
        torch.manual_seed(seed)
        return _Residual()

    members = [MemberSpec(module=build(s["seed"]), **s) for s in settings]
    together = fit_wrapper_population(members, X, y, q=q, task="regression", epochs=5,
                                      batch_size=64, device="cpu")  # fmt: skip
    for m, got in zip(members, together, strict=True):
        want = _alone(build(m.seed), m, X, y, q)
        assert isinstance(got, FairModelWrapper)
        torch.testing.assert_close(_params(got.module), _params(want.module), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose([r.total for r in got.history_],
                                   [r.total for r in want.history_], rtol=1e-4)  # fmt: skip
    # a population of one follows the same path and equals the lone model too
    (single,) = fit_wrapper_population([MemberSpec(module=build(1), **settings[1])], X, y, q=q,
                                       task="regression", epochs=5, batch_size=64, device="cpu")
    torch.testing.assert_close(_params(single.module), _params(together[1].module), rtol=1e-4,
                               atol=1e-5)  # fmt: skip
    # the members differ from one another (a population is not one model copied)
    assert not torch.allclose(_params(together[0].module), _params(together[1].module))


@pytest.mark.parametrize("epochs", [1, 4])
def test_classification_member_equals_alone(epochs: int) -> None:
    """Parameters equal after an epoch. Batched and single float32 arithmetic differ by about
    1e-7 an operation, and on some CPUs a classification member's path turns that into 1e-3
    of a weight within 4 epochs (seed 3 here), so after 4 epochs the member must make the same
    predictions as the model trained alone, to within 1% of the rows."""
    X, y, q = _data()
    yc = (y > np.median(y)).astype(np.int64)
    members = [MemberSpec(module=_mlp(s, d_out=2), seed=s, mu=1.0) for s in (3, 4)]
    together = fit_wrapper_population(members, X, yc, q=q, task="classification", epochs=epochs,
                                      batch_size=50, device="cpu", q_kernel="delta")  # fmt: skip
    for m, got in zip(members, together, strict=True):
        w = FairModelWrapper(_mlp(m.seed, d_out=2), mu=1.0, task="classification",
                             q_kernel="delta", device="cpu")  # fmt: skip
        w.fit(X, yc, q=q, epochs=epochs, batch_size=50, lr=m.lr, seed=m.seed)
        if epochs == 1:
            torch.testing.assert_close(_params(got.module), _params(w.module), rtol=1e-4,
                                       atol=1e-5)  # fmt: skip
            continue
        with torch.no_grad():
            Xt = torch.as_tensor(X).float()
            same = (got.module(Xt).argmax(1) == w.module(Xt).argmax(1)).float().mean()
        assert same >= 0.99, float(same)


def test_a_diverging_member_leaves_its_neighbours_unchanged() -> None:
    X, y, q = _data()
    calm = [MemberSpec(module=_mlp(s), seed=s, mu=1.0) for s in (0, 1)]
    wild = MemberSpec(module=_mlp(7), seed=7, mu=1.0, lr=1e3)  # blows up within a few steps
    with_wild = fit_wrapper_population([calm[0], wild, calm[1]], X, y, q=q, task="regression",
                                       epochs=6, batch_size=64, device="cpu",
                                       loss_bound=1e4)  # fmt: skip
    assert isinstance(with_wild[1], DivergenceError)
    with pytest.raises(DivergenceError):  # the same member alone diverges too
        _alone(_mlp(7), wild, X, y, q, epochs=6)
    calm2 = [MemberSpec(module=_mlp(s), seed=s, mu=1.0) for s in (0, 1)]
    without = fit_wrapper_population(calm2, X, y, q=q, task="regression", epochs=6,
                                     batch_size=64, device="cpu", loss_bound=1e4)  # fmt: skip
    for a, b in zip((with_wild[0], with_wild[2]), without, strict=True):
        torch.testing.assert_close(_params(a.module), _params(b.module))
        assert len(a.history_) == 6


def test_population_dependence_equals_the_single_measure() -> None:
    gen = torch.Generator().manual_seed(0)
    f = torch.randn(3, 50, 2, generator=gen)
    q = torch.randint(0, 3, (3, 50), generator=gen)
    for name, kernel in (("cka", "delta"), ("hsic", "rbf"), ("mmd", "rbf")):
        batched = population_dependence(name, q_kernel=kernel)(f, q)
        single = dependence_loss(name, q_kernel=kernel)
        want = torch.stack([single(f[s], q[s]) for s in range(3)])
        torch.testing.assert_close(batched, want, rtol=1e-5, atol=1e-7)


def test_population_adam_matches_torch_adam_and_freezes() -> None:
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(2, 5, generator=gen)
    stacked = w.clone().requires_grad_(True)
    opt = PopulationAdam([stacked], lr=[1e-2, 1e-3], weight_decay=[0.0, 0.1])
    lone = [w[s].clone().requires_grad_(True) for s in range(2)]
    lone_opt = [torch.optim.Adam([lone[0]], lr=1e-2),
                torch.optim.Adam([lone[1]], lr=1e-3, weight_decay=0.1)]  # fmt: skip
    for step in range(5):
        target = torch.randn(5, generator=gen)
        opt.zero_grad()
        ((stacked - target) ** 2).sum().backward()
        opt.step()
        for p, o in zip(lone, lone_opt, strict=True):
            o.zero_grad()
            ((p - target) ** 2).sum().backward()
            o.step()
        if step == 2:
            opt.freeze(1)
            frozen = stacked[1].detach().clone()
    torch.testing.assert_close(stacked[0].detach(), lone[0].detach())
    torch.testing.assert_close(stacked[1].detach(), frozen)
    assert opt.state_of(1)["steps"] == 3


def _stop_after(epochs: int):
    """An epoch report that stops its member (as successive halving does) after ``epochs``."""
    def report(record) -> None:
        if record.epoch + 1 >= epochs:
            raise MemberStopped(int(record.epoch))
    return report


@pytest.mark.parametrize("factory", ["mlp", "functional"])
def test_a_stopped_member_leaves_the_batch_and_the_others_train_as_alone(factory, monkeypatch):
    X, y, q = _data()
    widths: list[int] = []
    step = wrapper_population._Population._step

    def counted(self, x, *args, **kwargs):
        widths.append(int(x.shape[0]))  # members in this step's batched forward pass
        return step(self, x, *args, **kwargs)

    monkeypatch.setattr(wrapper_population._Population, "_step", counted)

    def build(seed: int) -> nn.Module:
        torch.manual_seed(seed)
        return _mlp(seed) if factory == "mlp" else _Residual()

    settings = [dict(seed=0, mu=0.0, lr=3e-3), dict(seed=1, mu=2.0, lr=1e-2, sigma_f=0.5),
                dict(seed=2, mu=8.0, lr=3e-3, grad_clip=0.5, sigma_q=2.0)]  # fmt: skip
    members = [MemberSpec(module=build(s["seed"]), **s) for s in settings]
    members[1] = MemberSpec(module=build(1), on_epoch_end=_stop_after(2), **settings[1])
    together = fit_wrapper_population(members, X, y, q=q, task="regression", epochs=5,
                                      batch_size=64, device="cpu")  # fmt: skip
    steps = len(widths) // 5  # mini-batches an epoch
    assert widths == [3] * (2 * steps) + [2] * (3 * steps)  # gone after its second epoch
    assert isinstance(together[1], MemberStopped)
    for i in (0, 2):
        want = _alone(build(members[i].seed), members[i], X, y, q)
        torch.testing.assert_close(_params(together[i].module), _params(want.module), rtol=1e-4,
                                   atol=1e-5)  # fmt: skip
        assert len(together[i].history_) == 5


def test_population_adam_keeps_the_members_it_is_told_to() -> None:
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(3, 4, generator=gen)
    full, part = w.clone().requires_grad_(True), w.clone().requires_grad_(True)
    kw = dict(lr=[1e-2, 1e-3, 3e-3], weight_decay=[0.0, 0.1, 0.01], clip_norm=[0.0, 0.5, 0.0])
    opt_full, opt_part = PopulationAdam([full], **kw), PopulationAdam([part], **kw)
    targets = [torch.randn(4, generator=gen) for _ in range(6)]
    for step, target in enumerate(targets):
        if step == 3:  # member 1 stops: the other optimiser drops it
            opt_full.freeze(1)
            opt_part.freeze(1)
            slots = torch.tensor([0, 2])
            part.data = part.data.index_select(0, slots)
            opt_part.keep(slots)
        for p, o in ((full, opt_full), (part, opt_part)):
            o.zero_grad()
            ((p - target) ** 2).sum().backward()
            o.step()
    torch.testing.assert_close(part.detach(), full.detach()[[0, 2]])
    assert [opt_part.state_of(s) for s in range(2)] == [opt_full.state_of(s) for s in (0, 2)]
    with pytest.raises(ValueError, match="keep the parameters' slices first"):
        opt_part.keep(torch.tensor([0]))


def test_stacked_mlp_refuses_mixed_architectures() -> None:
    with pytest.raises(ValueError, match="share one"):
        StackedMLP([_mlp(0, "16"), _mlp(1, "8")])
