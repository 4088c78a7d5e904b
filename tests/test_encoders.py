"""LISTA and LSALSA encoders: equal to ISTA/SALSA at init, differentiable, safe to save/load."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import lsalsa
from _numerics import assert_within, encoder_error, gamma, iteration_error
from conftest import low_precisions, random_dictionary
from lsalsa import LISTA, LSALSA, InputError, build_encoder, load_encoder
from lsalsa.core import operators as steps
from lsalsa.core.encoders import FORMAT_VERSION, components, read_model_header
from lsalsa.io import write_safetensors

CLASSIC = {"lista": "ista", "lsalsa": "salsa"}


def _setup(rng, D: int, dtype, device, B: int = 7, M: int = 12, N_i: int = 9):
    """Dictionaries, alphas (different per block) and signals as tensors of one kind."""
    dicts = [torch.as_tensor(random_dictionary(rng, M, N_i), dtype=dtype, device=device)
             for _ in range(D)]
    alphas = [0.15, 0.4][:D]
    Y = torch.as_tensor(rng.standard_normal((B, M)), dtype=dtype, device=device)
    return (dicts if D > 1 else dicts[0]), alphas, Y


@pytest.mark.parametrize("kind", ["lista", "lsalsa"])
@pytest.mark.parametrize("D", [1, 2])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("T", [1, 2, 7])
def test_init_equals_classic_solver(rng, device, kind, D, dtype, T):
    dicts, alphas, Y = _setup(rng, D, dtype, device)
    mu = 3.0 if kind == "lsalsa" else None
    encoder = build_encoder(kind, dicts, alphas, T, mu).to(device)
    with torch.no_grad():
        got = encoder(Y)
    want = lsalsa.solve(Y, dicts, alphas, method=CLASSIC[kind], n_iter=T,
                        mu=mu or 10.0).codes
    assert got.dtype == dtype and got.device.type == device.type
    # Not a vacuous comparison: some codes are non-zero and some are exactly zero.
    assert bool((want != 0).any()) and bool((want == 0).any())
    # Same operators and steps, possibly other kernels (batch shapes, in-place path): each
    # evaluation within the rounding of T iterations (tests/_numerics.py).
    bound = 2 * iteration_error(CLASSIC[kind], Y, dicts, alphas, T, mu=mu or 10.0,
                                dtype=dtype)
    assert_within(got, want, bound)
    # encode() (NumPy in, batched, inference mode) gives the same codes.
    np_codes = encoder.encode(Y.cpu().numpy(), batch_size=3) if device.type == "cpu" else None
    if np_codes is not None:
        assert_within(np_codes, want, bound)


def test_init_differs_across_T(rng):
    """Guards the equivalence test above: more layers really change the output."""
    dicts, alphas, Y = _setup(rng, 1, torch.float64, "cpu")
    one = LSALSA(dicts, alphas, 1, mu=3.0)(Y)
    five = LSALSA(dicts, alphas, 5, mu=3.0)(Y)
    assert (one - five).abs().max() > 1e-3


@pytest.mark.parametrize("kind", ["lista", "lsalsa"])
def test_untied_at_init_equals_tied(rng, kind):
    dicts, alphas, Y = _setup(rng, 2, torch.float64, "cpu")
    tied = build_encoder(kind, dicts, alphas, 4)
    untied = build_encoder(kind, dicts, alphas, 4, untied=True)
    assert untied.S.shape == (4, 18, 18)
    torch.testing.assert_close(untied(Y), tied(Y), rtol=0, atol=0)


def test_untied_layers_are_independent(rng):
    dicts, alphas, Y = _setup(rng, 1, torch.float64, "cpu")
    enc = LSALSA(dicts, alphas, 3, untied=True)
    before = enc(Y).detach()
    with torch.no_grad():
        enc.S[2].mul_(1.5)  # only the last layer
    assert (enc(Y) - before).abs().max() > 1e-6
    assert torch.equal(enc.S[0], LSALSA(dicts, alphas, 3).S)


def test_per_block_thresholds(rng):
    dicts, alphas, _ = _setup(rng, 2, torch.float64, "cpu")
    enc = LSALSA(dicts, alphas, 2, mu=4.0)
    np.testing.assert_allclose(enc.thresholds[:9].detach().numpy(), 0.15 / 4.0)
    np.testing.assert_allclose(enc.thresholds[9:].detach().numpy(), 0.4 / 4.0)
    # Learned by default for both encoders; fixed (the paper's exact model) on request.
    for encoder in (enc, LISTA(dicts, alphas, 2)):
        assert isinstance(encoder.thresholds, torch.nn.Parameter)
    for kind in ("lista", "lsalsa"):
        fixed = build_encoder(kind, dicts, alphas, 2, learn_thresholds=False)
        assert not isinstance(fixed.thresholds, torch.nn.Parameter)
        assert "thresholds" in dict(fixed.named_buffers())


def test_components_sum_to_reconstruction(rng):
    dicts, alphas, Y = _setup(rng, 2, torch.float64, "cpu")
    enc = LSALSA(dicts, alphas, 3)
    codes = enc(Y).detach()
    parts = components(enc, codes)
    # A_1 x_1 + A_2 x_2 and A x sum the same N products in other orders.
    magnitude = codes.abs() @ enc.dictionary.abs().T
    assert_within(parts[0] + parts[1], codes @ enc.dictionary.T,
                  2 * gamma(codes.shape[1] + 1) * magnitude)


def test_bad_construction():
    A = np.eye(4)
    with pytest.raises(InputError, match="depth"):
        LSALSA(A, 0.1, 0)
    with pytest.raises(InputError, match="mu"):
        LSALSA(A, 0.1, 2, mu=-1.0)
    with pytest.raises(InputError, match="kind must be one of lista, lsalsa, got 'fista'"):
        build_encoder("fista", A, 0.1, 2)
    with pytest.raises(InputError, match="untied must be true or false, got 1"):
        LSALSA(A, 0.1, 2, untied=1)
    with pytest.raises(InputError, match="shape"):
        LSALSA(A, 0.1, 2)(torch.zeros(3, 5, dtype=torch.float64))


# -- gradients --------------------------------------------------------------------------------

def _kink_margin(encoder, Y, monkeypatch) -> float:
    """Smallest distance of any pre-threshold value to +-tau over all layers."""
    margins = []
    original = steps.soft_threshold

    def recording(z, tau):
        margins.append(float(((z.abs() - tau).abs()).min()))
        return original(z, tau)

    monkeypatch.setattr(steps, "soft_threshold", recording)
    with torch.no_grad():
        encoder(Y)
    monkeypatch.setattr(steps, "soft_threshold", original)
    return min(margins)


@pytest.mark.parametrize("kind", ["lista", "lsalsa"])
@pytest.mark.parametrize("D", [1, 2])
def test_gradcheck_through_layers(kind, D, monkeypatch):
    rng = np.random.default_rng(7)
    dicts, alphas, Y = _setup(rng, D, torch.float64, "cpu", B=3, M=5, N_i=4)
    encoder = build_encoder(kind, dicts, alphas, 3, 2.0 if kind == "lsalsa" else None)
    # Perturb the weights so the trial point is generic, then make sure no pre-threshold value
    # sits within finite-difference reach of a kink (where the gradient is not defined).
    W0 = encoder.W.detach() + 0.05 * torch.as_tensor(rng.standard_normal(encoder.W.shape))
    S0 = encoder.S.detach() + 0.05 * torch.as_tensor(rng.standard_normal(encoder.S.shape))
    with torch.no_grad():
        encoder.W.copy_(W0)
        encoder.S.copy_(S0)
    assert _kink_margin(encoder, Y, monkeypatch) > 1e-4

    def f(W, S):
        return torch.func.functional_call(encoder, {"W": W, "S": S}, (Y,))

    out = f(W0, S0)
    assert bool((out != 0).any()) and bool((out == 0).any())  # both sides of the kink used
    W = W0.clone().requires_grad_(True)
    S = S0.clone().requires_grad_(True)
    # Central differences in float64 with step 1e-6: rounding u |f| / eps ~ 1e-10 |f| (|f| is
    # O(1) here), truncation eps^2 |f'''| / 6 ~ 2e-13 |f'''| on these polynomial-in-the-weights
    # layers (no kink within reach, checked above); atol 1e-7 and rtol 1e-5 hold for |f'''|
    # up to ~1e5, while a wrong backward is off by O(|gradient|).
    assert torch.autograd.gradcheck(f, (W, S), eps=1e-6, atol=1e-7, rtol=1e-5)


def test_gradcheck_learned_thresholds(monkeypatch):
    rng = np.random.default_rng(3)
    dicts, alphas, Y = _setup(rng, 1, torch.float64, "cpu", B=3, M=5, N_i=4)
    encoder = LISTA(dicts, alphas, 2)
    assert _kink_margin(encoder, Y, monkeypatch) > 1e-4
    tau = encoder.thresholds.detach().clone().requires_grad_(True)
    # Tolerances: see test_gradcheck_through_layers.
    assert torch.autograd.gradcheck(
        lambda t: torch.func.functional_call(encoder, {"thresholds": t}, (Y,)), (tau,),
        eps=1e-6, atol=1e-7)


# -- files ------------------------------------------------------------------------------------

@pytest.fixture
def trained_like(rng):
    """A D=2 LSALSA whose weights differ from the init (as after training)."""
    dicts, alphas, Y = _setup(rng, 2, torch.float64, "cpu")
    enc = LSALSA(dicts, alphas, 3, mu=2.5, untied=True)
    with torch.no_grad():
        enc.S.add_(0.01 * torch.as_tensor(rng.standard_normal(enc.S.shape)))
        enc.W.mul_(1.1)
    return enc, Y


def test_save_load_round_trip(trained_like, tmp_path, device):
    enc, Y = trained_like
    path = enc.save(tmp_path / "m.safetensors", extra={"epochs": 3, "val_rmse": 0.25})
    loaded = load_encoder(path, device=device)
    assert isinstance(loaded, LSALSA)
    assert loaded.config() == enc.config()
    assert loaded.W.device.type == device.type
    for name, value in enc.state_dict().items():  # the weights round-trip bit for bit
        assert torch.equal(loaded.state_dict()[name].cpu(), value), name
    # So the same network on the same device computes the same codes, bit for bit (another
    # device may round differently: compare like with like).
    with torch.no_grad():
        assert torch.equal(loaded(Y.to(device)), enc.to(device)(Y.to(device)))
    config, extra = read_model_header(path)
    assert extra == {"epochs": 3, "val_rmse": 0.25} and config["mu"] == 2.5
    assert config["untied"] is True and config["block_sizes"] == [9, 9]


def test_save_load_lista_float32(rng, tmp_path):
    dicts, alphas, Y = _setup(rng, 1, torch.float32, "cpu")
    enc = LISTA(dicts, alphas, 2)
    loaded = load_encoder(enc.save(tmp_path / "l.safetensors"))
    assert loaded.W.dtype == torch.float32 and isinstance(loaded.thresholds,
                                                            torch.nn.Parameter)
    assert torch.equal(loaded(Y), enc(Y))


def _rewrite(src, dst, tensors=None, config_change=None, metadata=None):
    """Copy a model file with altered tensors or config, resealed with fresh checksums: a
    consistent file that only the config's and tensors' own checks can refuse."""
    from safetensors import safe_open

    with safe_open(str(src), framework="pt") as handle:
        meta = {k: v for k, v in handle.metadata().items() if not k.startswith("lsalsa_t")
                and k != "lsalsa_sha256"}
    new = load_file(str(src))
    new.update(tensors or {})
    if config_change:
        config = json.loads(meta["lsalsa_config"])
        config.update(config_change)
        meta["lsalsa_config"] = json.dumps(config)
    write_safetensors(dst, new, meta if metadata is None else metadata)
    return dst


@pytest.mark.parametrize("case,message", [
    ("missing", "not found"),
    ("truncated", "corrupt or truncated"),
    ("random", "corrupt or truncated"),
    ("empty", "corrupt or truncated"),
    ("plain_safetensors", "not an lsalsa model"),
    ("future_version", f"reads version {FORMAT_VERSION}"),
    ("wrong_format", "not an lsalsa encoder"),
    ("shape_mismatch", "shape"),
    ("missing_weight", "do not match the config"),
    ("tampered_dictionary", "does not match its hash"),
    ("nan_weights", "NaN"),
    ("bad_json", "corrupt model config"),
    ("bad_kind", "unknown encoder kind"),
    ("negative_alpha", "alphas must be a list of finite numbers >= 0"),
    ("missing_mu", "numeric mu"),
    ("unsealed", "does not match the checksum"),
])
def test_load_refuses(trained_like, tmp_path, case, message):
    enc, _ = trained_like
    good = enc.save(tmp_path / "good.safetensors")
    bad = tmp_path / "bad.safetensors"
    data = good.read_bytes()
    state = load_file(str(good))
    if case == "truncated":
        bad.write_bytes(data[: len(data) - 100])
    elif case == "random":
        bad.write_bytes(np.random.default_rng(0).bytes(4096))
    elif case == "empty":
        bad.write_bytes(b"")
    elif case == "plain_safetensors":
        save_file(state, str(bad))
    elif case == "future_version":
        _rewrite(good, bad, config_change={"format_version": FORMAT_VERSION + 1})
    elif case == "wrong_format":
        _rewrite(good, bad, config_change={"format": "something-else"})
    elif case == "shape_mismatch":
        _rewrite(good, bad, config_change={"depth": 4})  # untied S has 3 layers
    elif case == "missing_weight":
        state.pop("thresholds")
        write_safetensors(bad, state, {"lsalsa_config": json.dumps(enc.config())})
    elif case == "tampered_dictionary":
        D = state["dictionary"].clone()
        D[0, 0] += 1e-9
        _rewrite(good, bad, tensors={"dictionary": D})
    elif case == "nan_weights":
        S = state["S"].clone()
        S[1, 2, 3] = float("nan")
        _rewrite(good, bad, tensors={"S": S})
    elif case == "bad_json":
        write_safetensors(bad, state, {"lsalsa_config": "{not json"})
    elif case == "bad_kind":
        _rewrite(good, bad, config_change={"kind": "fista"})
    elif case == "negative_alpha":
        _rewrite(good, bad, config_change={"alphas": [-a for a in enc.alphas]})
    elif case == "missing_mu":
        _rewrite(good, bad, config_change={"mu": None})
    elif case == "unsealed":  # a file written without lsalsa's checksums
        save_file(state, str(bad), metadata={"lsalsa_config": json.dumps(enc.config())})
    with pytest.raises(InputError, match=message) as info:
        load_encoder(tmp_path / ("absent.safetensors" if case == "missing" else "bad.safetensors"))
    assert "\n" not in str(info.value)
    load_encoder(good)  # the untouched file still loads


@pytest.mark.parametrize("kind", ["lista", "lsalsa"])
@pytest.mark.parametrize("untied", [False, True])
@pytest.mark.parametrize("depth", [1, 2, 4])
def test_inference_mode_in_place_path_equals_the_autograd_path(kind, untied, depth, rng):
    """Under inference mode the steps update buffers in place, write the codes into the
    caller's output and skip LSALSA's last ``d``; the codes must not change, bit for bit."""
    A = random_dictionary(rng, 10, 16)
    encoder = build_encoder(kind, [A[:, :6], A[:, 6:]], [0.05, 0.2], depth,
                            2.0 if kind == "lsalsa" else None, untied=untied)
    with torch.no_grad():  # perturb away from init so every layer's weights matter
        encoder.S.add_(0.01 * torch.randn(encoder.S.shape, dtype=encoder.S.dtype,
                                          generator=torch.Generator().manual_seed(0)))
    Y = torch.from_numpy(rng.standard_normal((9, 10)))
    with torch.no_grad():
        plain = encoder(Y)
        copied = encoder(Y, out=torch.full_like(plain, float("nan")))
    with torch.inference_mode():
        in_place = encoder(Y)
        out = torch.full_like(plain, float("nan"))
        written = encoder(Y, out=out)
    assert torch.equal(plain, in_place)
    assert written is out and torch.equal(plain, out)
    assert torch.equal(plain, copied)
    # encode() writes each batch's codes into one result, uneven batches included. Compared
    # with the same batches run one by one: BLAS may sum a 4-row product in another order than
    # a 9-row one (it does on some CPUs), so the full batch need not agree bit for bit.
    with torch.no_grad():
        by_batch = torch.cat([encoder(Y[i:i + 4]) for i in range(0, len(Y), 4)])
    assert torch.equal(by_batch, encoder.encode(Y, batch_size=4))
    torch.testing.assert_close(by_batch, plain)  # float64 defaults: rtol 1e-7, atol 1e-7


# -- low-precision inference (encode(dtype=...)) -------------------------------------------


@pytest.mark.parametrize("kind", ["lista", "lsalsa"])
@pytest.mark.parametrize("D", [1, 2])
@pytest.mark.parametrize("untied", [False, True])
def test_low_precision_codes_agree_with_float32_within_rounding(rng, device, kind, D, untied):
    dicts, alphas, Y = _setup(rng, D, torch.float32, device, B=40)
    encoder = build_encoder(kind, dicts, alphas, 4, 2.0 if kind == "lsalsa" else None,
                            untied=untied).to(device)
    with torch.no_grad():  # weights away from the classic ones, as after training
        encoder.S.mul_(0.9)
        encoder.thresholds.mul_(0.8)
    reference = encoder.encode(Y)
    # The same network a layer short (layer weights do not depend on the depth at the start):
    # the rounding must move the codes far less than a layer does, or a layer lost in the
    # low-precision loop would pass the worst-case bound below.
    short = build_encoder(kind, dicts, alphas, 3, 2.0 if kind == "lsalsa" else None,
                          untied=untied).to(device)
    with torch.no_grad():
        short.S.mul_(0.9)
        short.thresholds.mul_(0.8)
    one_layer = float(torch.linalg.norm(short.encode(Y) - reference))
    for low in low_precisions(device):
        name = str(low).removeprefix("torch.")
        for dtype in (low, name):  # a torch dtype or its name
            codes = encoder.encode(Y, dtype=dtype)
            assert codes.dtype == torch.float32 and codes.shape == reference.shape
            assert bool(torch.isfinite(codes).all())
            # Each product: 2^-8 (bfloat16) relative rounding of operand, weights and result,
            # the T layers' errors adding up; plus the float32 reference's own bound.
            bound = encoder_error(encoder, Y, low_precision=low) + encoder_error(encoder, Y)
            difference = (codes - reference).abs().cpu().numpy()
            assert np.all(difference <= bound), (difference / bound).max()
            assert difference.max() > 0  # the low-precision path did run
            assert np.linalg.norm(difference) < 0.1 * one_layer, (
                np.linalg.norm(difference) / one_layer)
            # The bound is worst case (no cancellation in the sums, every step's largest
            # magnitude), 20 to 40 % of the codes' size here; the differences are about
            # 100x smaller. It still says something: below half the codes' size.
            size = np.linalg.norm(reference.cpu().numpy(), axis=1, keepdims=True)
            assert np.median(bound / np.maximum(size, 1e-12)) < 0.5


@pytest.mark.parametrize("kind", ["lista", "lsalsa"])
def test_fused_layers_agree_with_the_plain_path_within_rounding(rng, device, kind):
    """encode(fused=True) (torch.compile) against the in-place path, in float32 and the low
    precisions: both run the same steps, so they differ by at most the two runs' rounding
    bounds (the compiler may contract a multiply and an add, or reorder a sum). One compiled
    function serves every batch size and follows the weights."""
    dicts, alphas, Y = _setup(rng, 2, torch.float32, device, B=40)
    encoder = build_encoder(kind, dicts, alphas, 3, 2.0 if kind == "lsalsa" else None,
                            untied=True).to(device)
    with torch.no_grad():  # weights away from the classic ones, as after training
        encoder.S.mul_(0.9)
        encoder.thresholds.mul_(0.8)
    for low in [None, *low_precisions(device)]:
        plain = encoder.encode(Y, dtype=low)
        fused = encoder.encode(Y, dtype=low, fused=True)
        assert fused.dtype == plain.dtype and fused.shape == plain.shape
        bound = 2 * encoder_error(encoder, Y, low_precision=low)
        difference = (fused - plain).abs().cpu().numpy()
        assert np.all(difference <= bound), (difference / bound).max()
        # Another batch size (the last batch of a set is shorter): the same codes, row by row,
        # within the same bound.
        pieces = encoder.encode(Y, batch_size=16, dtype=low, fused=True)
        assert np.all((pieces - plain).abs().cpu().numpy() <= bound)
    # Weights changed in place after the first fused calls (as a training step does): every
    # precision's fused path follows them, the low one through its cache of cast weights.
    with torch.no_grad():
        encoder.W.mul_(0.5)
        encoder.S.mul_(0.8)
        encoder.thresholds.mul_(1.5)
    for low in [None, *low_precisions(device)]:
        bound = 2 * encoder_error(encoder, Y, low_precision=low)
        difference = (encoder.encode(Y, dtype=low, fused=True)
                      - encoder.encode(Y, dtype=low)).abs().cpu().numpy()
        assert np.all(difference <= bound), (difference / bound).max()


def test_low_precision_keeps_the_model_dtype_and_numpy_in_numpy_out(rng):
    dicts, alphas, Y = _setup(rng, 2, torch.float64, "cpu")
    encoder = LSALSA(dicts, alphas, 3, 2.0)
    codes = encoder.encode(Y.numpy(), dtype="bfloat16")
    assert isinstance(codes, np.ndarray) and codes.dtype == np.float64
    assert np.isfinite(codes).all()


def test_low_precision_follows_the_weights(rng):
    """The cast weights are cached per dtype, and cast again when the weights change."""
    dicts, alphas, Y = _setup(rng, 1, torch.float32, "cpu")
    encoder = LSALSA(dicts, alphas, 3, 2.0)
    before = encoder.encode(Y, dtype="bfloat16")
    with torch.no_grad():
        encoder.S.mul_(0.5)
        encoder.W.mul_(2.0)
    fresh = LSALSA(dicts, alphas, 3, 2.0)
    fresh.load_state_dict(encoder.state_dict())
    after = encoder.encode(Y, dtype="bfloat16")
    assert torch.equal(after, fresh.encode(Y, dtype="bfloat16"))
    assert not torch.equal(after, before)


@pytest.mark.parametrize(("dtype", "match"), [
    ("float16", "float16 needs a CUDA device"), (torch.float16, "float16 needs a CUDA device"),
    ("int8", "bfloat16 or float16"), ("float64", "bfloat16 or float16"),
    (torch.float64, "bfloat16 or float16"), (3, "bfloat16 or float16")])
def test_low_precision_refuses_what_it_cannot_run_in_one_line(rng, dtype, match):
    dicts, alphas, Y = _setup(rng, 1, torch.float32, "cpu")
    encoder = LISTA(dicts, alphas, 2)
    with pytest.raises(InputError, match=match) as info:
        encoder.encode(Y, dtype=dtype)
    assert "\n" not in str(info.value)


def test_low_precision_is_inference_only(rng):
    dicts, alphas, Y = _setup(rng, 1, torch.float32, "cpu")
    encoder = LSALSA(dicts, alphas, 2, 2.0)
    with pytest.raises(InputError, match="inference"):
        encoder(Y, dtype="bfloat16")
    with torch.no_grad():
        assert torch.equal(encoder(Y, dtype="bfloat16"), encoder.encode(Y, dtype="bfloat16"))


def test_low_precision_components(rng):
    dicts, alphas, Y = _setup(rng, 2, torch.float32, "cpu")
    encoder = LSALSA(dicts, alphas, 3, 2.0)
    codes = encoder.encode(Y)
    low = components(encoder, codes, dtype="bfloat16")
    blocks = (codes[:, :9], codes[:, 9:])  # _setup's dictionaries have 9 atoms each
    for part, exact, A, block in zip(low, components(encoder, codes), dicts, blocks,
                                     strict=True):
        assert part.dtype == torch.float32
        # codes and atoms rounded (2^-8 each), the result rounded once more: 4 u |A| |x|.
        bound = 4 * 2.0**-8 * (block.abs() @ A.abs().T) + 1e-6
        assert bool(((part - exact).abs() <= bound).all())
