"""The hook order (one default_hooks), best.pt right after the evaluation that earned it, and the
curves rewritten with the evaluation history at every latest checkpoint."""
from __future__ import annotations

import torch

from cvray.train.checkpoint import CheckpointStore
from cvray.train.engine import TrainState
from cvray.train.hooks import default_hooks


class FakeWriter:
    def __init__(self):
        self.curve_calls: list[tuple[int, int | None]] = []  # (rows, evaluations) per curves()
        self.evals: list[int] = []

    def scalars(self, row, iteration):
        pass

    def eval(self, iteration, metrics, rows, history, curves):
        self.evals.append(iteration)

    def curves(self, rows, history=None):
        self.curve_calls.append((len(rows), None if history is None else len(history)))


def _state(max_iter: int) -> TrainState:
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    return TrainState(model, opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1.0), max_iter)


def _loop(state: TrainState, hooks) -> None:
    for h in hooks:
        h.before_train(state)
    while state.iteration < state.max_iter:
        state.optimizer.step()
        state.iteration += 1
        logs = {"loss": 1.0, "lr": 0.1, "grad_norm": 0.5, "images": 2, "positives": 1, "time": 0.01}
        for h in hooks:
            h.after_step(state, logs)
    for h in hooks:
        h.after_train(state)


def test_default_hooks_order_best_after_eval_and_curves_at_checkpoints(tmp_path):
    values = iter([0.1, 0.3, 0.2])  # evaluations at 2, 4 and the end (6)

    def eval_fn(state):
        return {"segm_AP": next(values)}, []

    writer, saved = FakeWriter(), []
    store = CheckpointStore(str(tmp_path / "checkpoints"))
    hooks = default_hooks(metric="segm_AP", log_period=100, writer=writer, eval_fn=eval_fn, eval_period=2,
                          store=store, checkpoint_period=3,
                          on_saved=lambda st, name, uri: saved.append((st.iteration, name, st.best_metric)))
    names = [type(h).__name__ for h in hooks.ordered()]
    assert names == ["LRSchedulerHook", "TimingHook", "MetricsHook", "EvalHook", "CheckpointHook"]
    _loop(_state(6), hooks.ordered())

    assert writer.evals == [2, 4, 6]
    # best right after the evaluation that improved it (2: 0.1, 4: 0.3; 6: 0.2 is not better)
    assert saved == [(2, "best", 0.1), (3, "latest", 0.1), (4, "best", 0.3), (6, "latest", 0.3)]
    best = store.load("best")
    assert best["iteration"] == 4 and best["best_metric"] == 0.3 and best["metrics"]["segm_AP"] == 0.3
    # each latest checkpoint rewrote the curves with the evaluations so far (3: one, 6: three);
    # the MetricsHook's own end-of-training write has no history argument
    assert writer.curve_calls == [(3, 1), (6, None), (6, 3)]


def test_default_hooks_without_validation_or_run():
    hooks = default_hooks(metric="segm_AP", log_period=1)
    assert [type(h).__name__ for h in hooks.ordered()] == ["LRSchedulerHook", "TimingHook", "MetricsHook"]
    state = _state(2)
    _loop(state, hooks.ordered())
    assert [r["iteration"] for r in hooks.metrics.rows] == [1, 2] and state.best_metric is None
