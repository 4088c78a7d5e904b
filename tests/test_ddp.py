"""DDP training: two gloo processes under torchrun equal one process with the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from _numerics import gamma
from lsalsa import load_encoder

SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import lsalsa
    from lsalsa.workflow.training_run import train_in_dir

    def problem():
        rng = np.random.default_rng(0)
        A = [rng.standard_normal((8, 6)), rng.standard_normal((8, 6))]
        A = [a / np.linalg.norm(a, axis=0) for a in A]
        Y = rng.standard_normal((101, 8))
        X = lsalsa.solve(Y, A, [0.1, 0.2], method="fista", n_iter=300).codes
        return A, Y, X

    if __name__ == "__main__":
        A, Y, X = problem()
        enc = lsalsa.LSALSA(A, [0.1, 0.2], 3, mu=2.0, learn_thresholds=False)
        # 101 rows in global batches of 15: the last batch (11) splits 6/5 across two ranks.
        # Plain steps, so the test's rounding bound (lr times the gradient's) holds.
        train_in_dir(sys.argv[1], enc, Y[:90], X[:90], val_signals=Y[90:], val_references=X[90:],
                     optimizer=sys.argv[2], lr=0.02, batch_size=15, max_epochs=3, seed=7,
                     progress=False, step_scaling=False, grad_clip=None, schedule="constant",
                     patience=None)
""")


@pytest.mark.slow
def test_two_processes_equal_one(tmp_path):
    optimizer = "sgd"  # the paper's; the gradient (what DDP shards) is the same for Adam
    script = tmp_path / "ddp_job.py"
    script.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items()
           if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    for name, launcher in (("one", []), ("two", ["-m", "torch.distributed.run",
                                                 "--nproc_per_node=2", "--standalone"])):
        done = subprocess.run([sys.executable, *launcher, str(script), str(tmp_path / name),
                               optimizer], env=env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
    one = load_encoder(tmp_path / "one" / "model.safetensors")
    two = load_encoder(tmp_path / "two" / "model.safetensors")
    init = load_encoder(tmp_path / "one" / "model.safetensors")
    assert not torch.allclose(one.S, _initial_S(init), atol=1e-6)  # training moved the weights
    # Two processes sum each batch's gradient in another order (two halves, then an
    # all-reduce) and run the layers on other batch shapes: per SGD step the gradients differ
    # by rounding, to first order (2T + 3) gamma(n) of their size (T layers forward and back,
    # the loss, the sums; n the longest sum). K steps of size lr let such a difference grow by
    # at most (1 + lr ||H||) each, H the Hessian of the loss (taken at the trained weights).
    # A DDP error (a lost shard, a wrong average) moves the weights by O(lr |g|) instead.
    steps, lr, depth = 3 * 6, 0.02, 3  # 3 epochs of 6 batches of 15 rows (SCRIPT)
    growth = (1 + lr * _loss_hessian_norm(one)) ** steps
    rel = steps * (2 * depth + 3) * gamma(16) * growth
    for name in ("W", "S"):
        torch.testing.assert_close(getattr(two, name), getattr(one, name), rtol=rel, atol=0)
    h1 = json.loads((tmp_path / "one" / "history.json").read_text())
    h2 = json.loads((tmp_path / "two" / "history.json").read_text())
    # Losses and RMSEs are sums of non-negative terms of such weights: the same bound.
    np.testing.assert_allclose([h["loss"] for h in h2[1:]], [h["loss"] for h in h1[1:]],
                               rtol=2 * rel)
    np.testing.assert_allclose([h["val_rmse"] for h in h2], [h["val_rmse"] for h in h1],
                               rtol=2 * rel)
    config = json.loads((tmp_path / "two" / "config.json").read_text())
    assert config["world_size"] == 2
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(
        p.name for p in (tmp_path / "one").iterdir())  # only rank 0 wrote, nothing stray


def _loss_hessian_norm(encoder) -> float:
    """||H||_2 of the training loss over (W, S) at the encoder's weights, by power iteration
    on Hessian-vector products (the problem of SCRIPT, solved again here)."""
    namespace: dict = {}
    exec(SCRIPT.split("if __name__")[0], namespace)
    _, Y, X = namespace["problem"]()
    Y, X = torch.from_numpy(Y[:90]), torch.from_numpy(X[:90])
    params = {n: p.detach() for n, p in encoder.named_parameters() if n in ("W", "S")}
    shapes = {n: p.shape for n, p in params.items()}
    sizes = [p.numel() for p in params.values()]

    def loss(flat):
        parts = dict(zip(shapes, torch.split(flat, sizes), strict=True))
        weights = {n: parts[n].reshape(shapes[n]) for n in shapes}
        out = torch.func.functional_call(encoder, weights, (Y,))
        return 0.5 * ((out - X) ** 2).sum(dim=1).mean()

    flat = torch.cat([p.reshape(-1) for p in params.values()])
    v = torch.randn(flat.shape, dtype=flat.dtype, generator=torch.Generator().manual_seed(0))
    value = 0.0
    for _ in range(50):
        v = v / torch.linalg.vector_norm(v)
        _, hv = torch.autograd.functional.hvp(loss, flat, v)
        value = float(torch.linalg.vector_norm(hv))
        v = hv
    return value


def _initial_S(encoder):
    from lsalsa import LSALSA

    return LSALSA(encoder.problem, encoder.alphas, encoder.depth, mu=encoder.mu,
                  learn_thresholds=False).S
