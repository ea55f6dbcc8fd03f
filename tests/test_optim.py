"""Optimisers and schedules against numbers worked out by hand from the formulas.

Expected values are written as literals (with the arithmetic in a comment);
none is computed by minivgg.training.optim.
"""

from __future__ import annotations

import numpy as np
import pytest

from minivgg.training.optim import CHUNK, SGD, Adam
from minivgg.training.schedules import ReduceLROnPlateau, StepLR

GRADS_1D = [1.0, 2.0, -1.0]  # the gradient sequence used for the scalar walk-throughs


def scalar_params(w: float = 1.0, b: float = 0.5, dtype=np.float64) -> dict[str, np.ndarray]:
    return {"fc.w": np.array([w], dtype=dtype), "fc.b": np.array([b], dtype=dtype)}


def run(opt, params, gseq, key="fc.w"):
    """Apply gradients gseq[i] to `key` (0 to the others); return w after each step."""
    out = []
    for g in gseq:
        grads = {k: np.zeros_like(v) for k, v in params.items()}
        grads[key][...] = g
        opt.step(grads)
        out.append(float(params[key][0]))
    return out


# ------------------------------------------------------------------ SGD
def test_plain_sgd_hand_computed():
    p = scalar_params()
    opt = SGD(p, lr=0.1, weight_decay=0.0)
    # w = 1 - 0.1*1 = 0.9; 0.9 - 0.1*2 = 0.7; 0.7 - 0.1*(-1) = 0.8
    assert run(opt, p, GRADS_1D) == pytest.approx([0.9, 0.7, 0.8], rel=1e-12)


def test_momentum_hand_computed():
    p = scalar_params()
    opt = SGD(p, lr=0.1, momentum=0.9, weight_decay=0.0)
    # v1 = 1            -> w = 1    - 0.1*1    = 0.9
    # v2 = 0.9*1 + 2    = 2.9  -> w = 0.9  - 0.29  = 0.61
    # v3 = 0.9*2.9 - 1  = 1.61 -> w = 0.61 - 0.161 = 0.449
    assert run(opt, p, GRADS_1D) == pytest.approx([0.9, 0.61, 0.449], rel=1e-12)
    assert opt.state["velocity"]["fc.w"][0] == pytest.approx(1.61, rel=1e-12)


def test_nesterov_hand_computed_and_differs_from_plain():
    p = scalar_params()
    opt = SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.0)
    # v1 = 1,    d = 1  + 0.9*1    = 1.9   -> w = 1     - 0.19   = 0.81
    # v2 = 2.9,  d = 2  + 0.9*2.9  = 4.61  -> w = 0.81  - 0.461  = 0.349
    # v3 = 1.61, d = -1 + 0.9*1.61 = 0.449 -> w = 0.349 - 0.0449 = 0.3041
    nesterov_expected = [0.81, 0.349, 0.3041]
    assert run(opt, p, GRADS_1D) == pytest.approx(nesterov_expected, rel=1e-12)
    # Negative control: the heavy-ball and plain updates must NOT match these numbers.
    for kw in ({"momentum": 0.9}, {}):
        q = scalar_params()
        other = run(SGD(q, lr=0.1, weight_decay=0.0, **kw), q, GRADS_1D)
        assert other != pytest.approx(nesterov_expected, rel=1e-6)


def test_momentum_with_weight_decay_hand_computed():
    p = scalar_params(w=2.0)
    opt = SGD(p, lr=0.1, momentum=0.9, weight_decay=0.1)
    # g1 = 0.5 + 0.1*2    = 0.7,   v1 = 0.7                 -> w = 2    - 0.07   = 1.93
    # g2 = 0.5 + 0.1*1.93 = 0.693, v2 = 0.63 + 0.693 = 1.323 -> w = 1.93 - 0.1323 = 1.7977
    assert run(opt, p, [0.5, 0.5]) == pytest.approx([1.93, 1.7977], rel=1e-12)


def test_weight_decay_skips_biases_by_default():
    p = {"conv1_1.w": np.full(3, 1.0), "conv1_1.b": np.full(2, 1.0), "w": np.full(1, 1.0), "b": np.full(1, 1.0)}
    opt = SGD(p, lr=0.1, weight_decay=0.1)  # zero gradients: only decay moves anything
    opt.step({k: np.zeros_like(v) for k, v in p.items()})
    # weights: 1 - 0.1*(0 + 0.1*1) = 0.99; biases untouched
    np.testing.assert_array_equal(p["conv1_1.w"], 0.99)
    np.testing.assert_array_equal(p["w"], 0.99)
    np.testing.assert_array_equal(p["conv1_1.b"], 1.0)
    np.testing.assert_array_equal(p["b"], 1.0)
    assert opt.decays("fc6.w") and not opt.decays("fc6.b")


def test_decay_biases_option():
    p = scalar_params(w=1.0, b=1.0)
    SGD(p, lr=0.1, weight_decay=0.1, decay_biases=True).step({k: np.zeros(1) for k in p})
    np.testing.assert_allclose([p["fc.w"][0], p["fc.b"][0]], [0.99, 0.99], rtol=1e-15)


def test_paper_default_weight_decay():
    p = scalar_params(w=1.0)
    opt = SGD(p, lr=1.0)
    assert opt.weight_decay == 5e-4
    opt.step({k: np.zeros(1) for k in p})
    assert p["fc.w"][0] == pytest.approx(1 - 5e-4, rel=1e-15)


# ----------------------------------------------------------------- Adam
def test_adam_hand_computed():
    p = scalar_params()
    opt = Adam(p, lr=0.1)  # betas (0.9, 0.999), eps 1e-8
    # t=1: m = 0.1,   v = 0.001     ; m^ = 0.1/0.1 = 1,          v^ = 0.001/0.001 = 1
    #      w = 1 - 0.1 * 1/(1 + 1e-8)                      = 0.900000001
    # t=2: m = 0.29,  v = 0.004999  ; m^ = 0.29/0.19 = 1.5263157894736843
    #      v^ = 0.004999/0.001999 = 2.500750375187594, sqrt = 1.5813761...
    #      w = 0.900000001 - 0.1 * 1.5263157.../1.5813761... = 0.8034817990281663
    # t=3: m = 0.161, v = 0.005994001; m^ = 0.161/0.271, v^ = 0.005994001/0.002997001 = 2
    #      w = 0.8034818 - 0.1 * 0.5940959.../1.4142135... = 0.7614728689681868
    got = run(opt, p, GRADS_1D)
    assert got == pytest.approx([0.900000001, 0.8034817990281663, 0.7614728689681868], rel=1e-12)
    assert opt.state["exp_avg"]["fc.w"][0] == pytest.approx(0.161, rel=1e-12)
    assert opt.state["exp_avg_sq"]["fc.w"][0] == pytest.approx(0.005994001, rel=1e-12)
    assert opt.step_count == 3
    # Negative control: without bias correction step 1 would move w by 0.1*0.1/sqrt(0.001) = 0.316.
    assert got[0] != pytest.approx(1 - 0.31622776601683794, rel=1e-6)


def test_adam_weight_decay_is_l2_on_weights_only():
    p = scalar_params(w=1.0, b=1.0)
    Adam(p, lr=0.1, weight_decay=0.5).step({k: np.zeros(1) for k in p})
    # g = 0 + 0.5*1 = 0.5; m^ = 0.5, v^ = 0.25 -> w = 1 - 0.1*0.5/(0.5 + 1e-8) = 0.90000000199999...
    assert p["fc.w"][0] == pytest.approx(1 - 0.1 * 0.5 / (0.5 + 1e-8), rel=1e-12)
    assert p["fc.b"][0] == 1.0  # m = v = 0 -> 0/(0+eps) = 0: untouched


# ------------------------------------------------- dtype, in place, grads
@pytest.mark.parametrize(
    "make", [lambda p: SGD(p, lr=0.1, momentum=0.9, nesterov=True), lambda p: Adam(p, lr=0.1, weight_decay=1e-2)]
)
def test_float32_stays_float32_in_place(make):
    rng = np.random.default_rng(0)
    p32 = {"a.w": rng.standard_normal((4, 3)).astype(np.float32), "a.b": rng.standard_normal(3).astype(np.float32)}
    p64 = {k: v.astype(np.float64) for k, v in p32.items()}
    objs = {k: v for k, v in p32.items()}
    initial = {k: v.copy() for k, v in p32.items()}
    view = p32["a.w"][1]  # a view must see the update
    o32, o64 = make(p32), make(p64)
    for _ in range(3):
        g64 = {k: rng.standard_normal(v.shape) for k, v in p64.items()}
        g32 = {k: v.astype(np.float32) for k, v in g64.items()}
        g32_before = {k: v.copy() for k, v in g32.items()}
        o32.step(g32)
        o64.step(g64)
        for k in g32:  # grads are read only
            np.testing.assert_array_equal(g32[k], g32_before[k])
    for k in p32:
        assert p32[k] is objs[k] and p32[k].dtype == np.float32
        np.testing.assert_allclose(p32[k], p64[k], rtol=1e-5, atol=1e-6)
        for buf in o32.state.values():
            assert buf[k].dtype == np.float32
        assert not np.array_equal(p32[k], initial[k])  # really updated
    np.testing.assert_array_equal(view, p32["a.w"][1])


def test_in_place_same_object_and_value_changes():
    p = scalar_params()
    w = p["fc.w"]
    SGD(p, lr=0.1).step({"fc.w": np.ones(1), "fc.b": np.ones(1)})
    assert p["fc.w"] is w and w[0] != 1.0


def test_chunked_update_equals_whole_array_update():
    """A parameter larger than CHUNK is updated in slices; the bits must not depend on it."""
    rng = np.random.default_rng(1)
    n = CHUNK * 2 + 123
    big = {"x.w": rng.standard_normal(n).astype(np.float32)}
    # The same numbers as a non-contiguous array, which is updated whole.
    store = np.zeros((n, 2), np.float32)
    store[:, 0] = big["x.w"]
    strided = {"x.w": store[:, 0]}
    assert not strided["x.w"].flags.c_contiguous
    oa, ob = Adam(big, lr=0.01, weight_decay=0.1), Adam(strided, lr=0.01, weight_decay=0.1)
    for _ in range(2):
        g = {"x.w": rng.standard_normal(n).astype(np.float32)}
        oa.step(g)
        ob.step(g)
    assert big["x.w"].tobytes() == np.ascontiguousarray(strided["x.w"]).tobytes()
    assert np.all(store[:, 1] == 0)  # the neighbouring column was not touched


def test_grad_key_and_shape_errors_name_the_key():
    p = scalar_params()
    opt = SGD(p, lr=0.1, momentum=0.9)
    before = p["fc.w"].copy()
    with pytest.raises(ValueError, match=r"fc\.b"):
        opt.step({"fc.w": np.ones(1)})
    with pytest.raises(ValueError, match=r"fc\.extra"):
        opt.step({"fc.w": np.ones(1), "fc.b": np.ones(1), "fc.extra": np.ones(1)})
    with pytest.raises(ValueError, match=r"fc\.b.*shape"):
        opt.step({"fc.w": np.ones(1), "fc.b": np.ones(2)})
    with pytest.raises(TypeError, match=r"fc\.b.*float32"):
        opt.step({"fc.w": np.ones(1), "fc.b": np.ones(1, np.float32)})
    np.testing.assert_array_equal(p["fc.w"], before)  # nothing applied
    assert opt.step_count == 0


@pytest.mark.parametrize(
    "ctor, match",
    [
        (lambda p: SGD(p, lr=0), "lr"),
        (lambda p: SGD(p, lr=-0.1), "lr"),
        (lambda p: SGD(p, lr=float("nan")), "lr"),
        (lambda p: SGD(p, lr=0.1, momentum=1.0), "momentum"),
        (lambda p: SGD(p, lr=0.1, momentum=-0.1), "momentum"),
        (lambda p: SGD(p, lr=0.1, nesterov=True), "nesterov"),
        (lambda p: SGD(p, lr=0.1, weight_decay=-1e-4), "weight_decay"),
        (lambda p: Adam(p, lr=0), "lr"),
        (lambda p: Adam(p, betas=(0.9, 1.0)), "betas"),
        (lambda p: Adam(p, betas=(-0.1, 0.9)), "betas"),
        (lambda p: Adam(p, betas=(0.9,)), "betas"),
        (lambda p: Adam(p, eps=0), "eps"),
        (lambda p: SGD({}, lr=0.1), "empty"),
    ],
)
def test_bad_arguments(ctor, match):
    with pytest.raises(ValueError, match=match):
        ctor(scalar_params())


def test_bad_types_and_lr_assignment():
    with pytest.raises(TypeError, match="params"):
        SGD([np.ones(1)], lr=0.1)
    with pytest.raises(TypeError, match="floating"):
        SGD({"a.w": np.ones(1, np.int64)}, lr=0.1)
    opt = SGD(scalar_params(), lr=0.1)
    with pytest.raises(ValueError, match="lr"):
        opt.lr = 0.0
    assert opt.lr == 0.1


# ------------------------------------------------- state: exact resume
def model_params(seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return {
        "conv1_1.w": rng.standard_normal((4, 3, 3, 3)).astype(dtype),
        "conv1_1.b": rng.standard_normal(4).astype(dtype),
        "fc6.w": rng.standard_normal((16, 5)).astype(dtype),
        "fc6.b": rng.standard_normal(5).astype(dtype),
    }


def grad_seq(n, seed=1, dtype=np.float32):
    rng = np.random.default_rng(seed)
    ref = model_params()
    return [{k: rng.standard_normal(v.shape).astype(dtype) for k, v in ref.items()} for _ in range(n)]


MAKERS = {
    "sgd": lambda p: SGD(p, lr=0.05, momentum=0.9),
    "nesterov": lambda p: SGD(p, lr=0.05, momentum=0.9, nesterov=True, decay_biases=True),
    "adam": lambda p: Adam(p, lr=0.01, weight_decay=1e-3),
}


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_state_round_trip_through_npz_is_bit_exact(name, tmp_path):
    make, grads = MAKERS[name], grad_seq(7)
    metrics = [0.1, 0.2, 0.2, 0.2, 0.2, 0.3, 0.3]

    def go(params, opt, sched, steps):
        for i in steps:
            opt.step(grads[i])
            sched.step(metrics[i])

    # Uninterrupted.
    pa = model_params()
    oa = make(pa)
    sa = ReduceLROnPlateau(oa, patience=1)
    go(pa, oa, sa, range(7))
    assert sa.num_reductions >= 1  # the schedule really changed lr mid-run

    # Interrupted after 3 steps: state through an .npz file (no pickle), fresh objects.
    pb = model_params()
    ob = make(pb)
    sb = ReduceLROnPlateau(ob, patience=1)
    go(pb, ob, sb, range(3))
    np.savez(tmp_path / "ck.npz", **{f"p.{k}": v for k, v in pb.items()},
             **{f"o.{k}": v for k, v in ob.state_dict().items()},
             **{f"s.{k}": v for k, v in sb.state_dict().items()})
    with np.load(tmp_path / "ck.npz", allow_pickle=False) as f:
        saved = {k: f[k] for k in f.files}
    pc = {k[2:]: saved[k].copy() for k in saved if k.startswith("p.")}
    oc = make(pc)
    sc = ReduceLROnPlateau(oc, patience=1)
    oc.load_state_dict({k[2:]: v for k, v in saved.items() if k.startswith("o.")})
    sc.load_state_dict({k[2:]: v for k, v in saved.items() if k.startswith("s.")})
    go(pc, oc, sc, range(3, 7))

    for k in pa:
        assert pa[k].tobytes() == pc[k].tobytes(), k
    assert oa.lr == oc.lr and oa.step_count == oc.step_count
    assert sa.state_dict() == sc.state_dict()

    # Negative control: resuming the parameters but NOT the optimiser state diverges.
    pd = {k[2:]: saved[k].copy() for k in saved if k.startswith("p.")}
    od = make(pd)
    for i in range(3, 7):
        od.step(grads[i])
    assert any(pa[k].tobytes() != pd[k].tobytes() for k in pa)


def test_state_dict_values_are_flat_arrays_and_scalars():
    opt = Adam(model_params())
    opt.step(grad_seq(1)[0])
    d = opt.state_dict()
    assert all(isinstance(k, str) for k in d)
    assert all(isinstance(v, (np.ndarray, float, int)) for v in d.values())
    assert d["step"] == 1 and d["lr"] == 1e-3
    assert "exp_avg.fc6.w" in d and d["exp_avg.fc6.w"].dtype == np.float32
    d["exp_avg.fc6.w"][...] = 123  # a snapshot, not the live buffer
    assert not np.any(opt.state["exp_avg"]["fc6.w"] == 123)


def test_load_state_dict_rejects_mismatches_and_changes_nothing():
    p = model_params()
    sgd = SGD(p, lr=0.05, momentum=0.9)
    sgd.step(grad_seq(1)[0])
    adam = Adam(model_params())
    with pytest.raises(ValueError, match="missing key"):
        adam.load_state_dict(sgd.state_dict())  # another optimiser class
    d = sgd.state_dict()
    other = SGD(model_params(), lr=0.05, momentum=0.5)
    with pytest.raises(ValueError, match="momentum"):
        other.load_state_dict(d)
    fresh = SGD(model_params(), lr=0.05, momentum=0.9)
    bad = dict(d, **{"velocity.fc6.w": np.zeros((5, 16), np.float32)})
    bad["lr"] = 0.5
    with pytest.raises(ValueError, match=r"velocity\.fc6\.w"):
        fresh.load_state_dict(bad)
    bad = dict(d, **{"velocity.fc6.w": d["velocity.fc6.w"].astype(np.float64)})
    with pytest.raises(ValueError, match=r"float32"):
        fresh.load_state_dict(bad)
    assert fresh.lr == 0.05 and fresh.step_count == 0  # untouched by the failed loads
    assert not np.any(fresh.state["velocity"]["conv1_1.w"])
    with pytest.raises(ValueError, match="lr"):
        fresh.load_state_dict(dict(d, lr=0.0))
    with pytest.raises(ValueError, match="extra"):
        fresh.load_state_dict(dict(d, extra=1))


# ------------------------------------------------------------ schedules
def test_step_lr():
    opt = SGD(scalar_params(), lr=1.0)
    sched = StepLR(opt, step_size=2, gamma=0.1)
    lrs = [sched.step() for _ in range(5)]
    # epochs 1..5: decay after epochs 2 and 4
    assert lrs == pytest.approx([1.0, 0.1, 0.1, 0.01, 0.01], rel=1e-12)
    assert opt.lr == lrs[-1]


def test_reduce_on_plateau_paper_rule():
    opt = SGD(scalar_params(), lr=1e-2)
    sched = ReduceLROnPlateau(opt, patience=2)  # factor 0.1, max mode, +0.001 needed
    accs = [0.50, 0.60, 0.6005, 0.59, 0.60, 0.70, 0.70, 0.70, 0.70, 0.70, 0.70]
    lrs = [sched.step(a) for a in accs]
    # 0.6005 is not +0.001 better: bad epochs 1 (0.6005), 2 (0.59), 3 (0.60) -> /10 at epoch 5;
    # 0.70 improves; then bad 1, 2, 3 -> /10 at epoch 9; bad 1, 2 afterwards.
    expected = [1e-2] * 4 + [1e-3] * 4 + [1e-4] * 3
    assert lrs == pytest.approx(expected, rel=1e-12)
    assert sched.num_reductions == 2 and sched.best == 0.70


def test_reduce_on_plateau_negative_control_never_reduces_while_improving():
    opt = SGD(scalar_params(), lr=1e-2)
    sched = ReduceLROnPlateau(opt, patience=0)
    for a in np.linspace(0.1, 0.9, 9):
        sched.step(float(a))
    assert opt.lr == 1e-2 and sched.num_reductions == 0


def test_reduce_on_plateau_min_mode_cooldown_min_lr():
    opt = SGD(scalar_params(), lr=1.0)
    sched = ReduceLROnPlateau(opt, factor=0.5, patience=0, mode="min", threshold=0.0, cooldown=1, min_lr=0.3)
    lrs = [sched.step(x) for x in [1.0, 1.0, 1.0, 1.0, 1.0, 0.5]]
    # epoch 2: bad -> 0.5 (cooldown 1); epoch 3: cooldown, not counted; epoch 4: bad -> max(0.25, 0.3) = 0.3;
    # epoch 5: cooldown; epoch 6: improvement.
    assert lrs == pytest.approx([1.0, 0.5, 0.5, 0.3, 0.3, 0.3], rel=1e-12)


def test_reduce_on_plateau_relative_threshold():
    opt = SGD(scalar_params(), lr=1.0)
    sched = ReduceLROnPlateau(opt, patience=0, threshold=0.1, threshold_mode="rel")
    sched.step(1.0)
    sched.step(1.05)  # needs > 1.1: bad -> reduce
    assert opt.lr == pytest.approx(0.1)
    sched.step(1.2)  # > 1.1: improvement
    assert opt.lr == pytest.approx(0.1) and sched.best == 1.2


def test_schedule_state_round_trip():
    accs = [0.5, 0.5, 0.5, 0.6, 0.6, 0.6, 0.6]
    oa = SGD(scalar_params(), lr=1.0)
    sa = ReduceLROnPlateau(oa, patience=1, cooldown=1)
    full = [sa.step(a) for a in accs]
    ob = SGD(scalar_params(), lr=1.0)
    sb = ReduceLROnPlateau(ob, patience=1, cooldown=1)
    head = [sb.step(a) for a in accs[:3]]
    od, sd = ob.state_dict(), sb.state_dict()
    oc = SGD(scalar_params(), lr=1.0)
    sc = ReduceLROnPlateau(oc, patience=1, cooldown=1)
    oc.load_state_dict({k: np.asarray(v) for k, v in od.items()})  # as np.load returns them
    sc.load_state_dict({k: np.asarray(v) for k, v in sd.items()})
    assert head + [sc.step(a) for a in accs[3:]] == full
    with pytest.raises(ValueError, match="patience"):
        ReduceLROnPlateau(SGD(scalar_params(), lr=1.0), patience=3, cooldown=1).load_state_dict(sd)
    s1 = StepLR(SGD(scalar_params(), lr=1.0), 3)
    s1.step()
    s2 = StepLR(SGD(scalar_params(), lr=1.0), 3)
    s2.load_state_dict(s1.state_dict())
    assert s2.last_epoch == 1
    with pytest.raises(ValueError, match="step_size"):
        StepLR(SGD(scalar_params(), lr=1.0), 2).load_state_dict(s1.state_dict())


@pytest.mark.parametrize(
    "ctor, exc, match",
    [
        (lambda o: StepLR(o, 0), ValueError, "step_size"),
        (lambda o: StepLR(o, 2, gamma=0), ValueError, "gamma"),
        (lambda o: StepLR(o, 2, gamma=2.0), ValueError, "gamma"),
        (lambda o: ReduceLROnPlateau(o, factor=1.0), ValueError, "factor"),
        (lambda o: ReduceLROnPlateau(o, patience=-1), ValueError, "patience"),
        (lambda o: ReduceLROnPlateau(o, mode="up"), ValueError, "mode"),
        (lambda o: ReduceLROnPlateau(o, threshold=-1), ValueError, "threshold"),
        (lambda o: ReduceLROnPlateau(o, threshold_mode="pct"), ValueError, "threshold_mode"),
        (lambda o: ReduceLROnPlateau(o, min_lr=-1), ValueError, "min_lr"),
        (lambda o: StepLR(object(), 2), TypeError, "Optimizer"),
    ],
)
def test_schedule_bad_arguments(ctor, exc, match):
    with pytest.raises(exc, match=match):
        ctor(SGD(scalar_params(), lr=1.0))


def test_plateau_rejects_nan_metric():
    sched = ReduceLROnPlateau(SGD(scalar_params(), lr=1.0))
    with pytest.raises(ValueError, match="metric"):
        sched.step(float("nan"))
    assert sched.last_epoch == 0
