"""minivgg.exercises: a new workspace is NOT IMPLEMENTED everywhere, a correct one passes, planted bugs are caught."""

from __future__ import annotations

import json

import numpy as np
import pytest

from minivgg.cli import main
from minivgg.exercises import FAIL, NOT_IMPLEMENTED, PASS, check_module, load_student, new_workspace

# A correct student solution, written plainly in NumPy (independent of minivgg.ops, the reference).
SOLUTION = '''
import numpy as np

def affine_forward(x, w, b):
    out = x.reshape(x.shape[0], -1) @ w + b
    return out, (x, w, b)

def affine_backward(dout, cache):
    x, w, b = cache
    X = x.reshape(x.shape[0], -1)
    dx = (dout @ w.T).reshape(x.shape)
    dw = X.T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db

def relu_forward(x):
    return np.maximum(0, x), x

def relu_backward(dout, cache):
    return dout * (cache > 0)

def conv_forward_naive(x, w, b, conv_param):
    s, p = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    Ho, Wo = 1 + (H + 2 * p - HH) // s, 1 + (W + 2 * p - WW) // s
    out = np.zeros((N, F, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            patch = xp[:, :, i * s:i * s + HH, j * s:j * s + WW]
            out[:, :, i, j] = np.tensordot(patch, w, axes=([1, 2, 3], [1, 2, 3])) + b
    return out, (x, w, b, conv_param)

def conv_backward_naive(dout, cache):
    x, w, b, conv_param = cache
    s, p = conv_param["stride"], conv_param["pad"]
    F, _, HH, WW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    db = dout.sum(axis=(0, 2, 3))
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            patch = xp[:, :, i * s:i * s + HH, j * s:j * s + WW]
            dw += np.tensordot(dout[:, :, i, j], patch, axes=([0], [0]))
            dxp[:, :, i * s:i * s + HH, j * s:j * s + WW] += np.tensordot(dout[:, :, i, j], w, axes=([1], [0]))
    dx = dxp[:, :, p:p + x.shape[2], p:p + x.shape[3]]
    return dx, dw, db

def max_pool_forward_naive(x, pool_param):
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, H, W = x.shape
    Ho, Wo = 1 + (H - ph) // s, 1 + (W - pw) // s
    out = np.zeros((N, C, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            out[:, :, i, j] = x[:, :, i * s:i * s + ph, j * s:j * s + pw].max(axis=(2, 3))
    return out, (x, pool_param)

def max_pool_backward_naive(dout, cache):
    x, pool_param = cache
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    dx = np.zeros_like(x)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            win = x[:, :, i * s:i * s + ph, j * s:j * s + pw]
            mask = win == win.max(axis=(2, 3), keepdims=True)
            dx[:, :, i * s:i * s + ph, j * s:j * s + pw] += mask * dout[:, :, i, j][:, :, None, None]
    return dx

def softmax_loss(x, y):
    z = x - x.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    N = x.shape[0]
    loss = -np.log(p[np.arange(N), y]).sum() / N
    dx = p.copy()
    dx[np.arange(N), y] -= 1
    dx /= N
    return loss, dx
'''


def _student(tmp_path, text):
    d = tmp_path / "ws"
    d.mkdir(exist_ok=True)
    (d / "layers.py").write_text(text)
    return d


def _grade(tmp_path, text, only=None):
    load = load_student(_student(tmp_path, text))
    assert load.error is None, load.error
    return {r.name: r for r in check_module(load.module, only)}


def test_new_workspace_is_not_implemented_everywhere(tmp_path):
    new_workspace(tmp_path / "ws")
    load = load_student(tmp_path / "ws")
    results = check_module(load.module)
    assert len(results) == 5
    for r in results:
        assert r.status == NOT_IMPLEMENTED, (r.name, r.status, r.explanation)
        assert r.functions[0] in r.explanation and "not implemented" in r.explanation


def test_correct_solution_passes_every_exercise(tmp_path):
    results = _grade(tmp_path, SOLUTION)
    for r in results.values():
        assert r.status == PASS, (r.name, r.explanation)
        assert len(r.cases_passed) >= 3


# (bug, exercise, text replaced, replacement, words the explanation must contain)
BUGS = [
    ("transposed weight in forward", "affine", "x.reshape(x.shape[0], -1) @ w + b", "x.reshape(x.shape[0], -1) @ w.T + b",
     ["affine_forward", "raised"]),
    ("missing batch sum in db", "affine", "db = dout.sum(axis=0)", "db = dout[0]", ["affine_backward", "db is wrong"]),
    ("dx scaled by 2", "affine", "dx = (dout @ w.T).reshape(x.shape)", "dx = 2 * (dout @ w.T).reshape(x.shape)",
     ["affine_backward", "dx is wrong", "constant factor"]),
    ("dw transposed", "affine", "dw = X.T @ dout", "dw = (X.T @ dout).T", ["affine_backward", "transposed"]),
    ("wrong ReLU mask", "relu", "return dout * (cache > 0)", "return dout * (cache < 0)", ["relu_backward", "dx is wrong"]),
    ("sign flip in ReLU backward", "relu", "return dout * (cache > 0)", "return -dout * (cache > 0)",
     ["relu_backward", "sign error"]),
    ("wrong stride in conv backward", "conv", "dxp[:, :, i * s:i * s + HH, j * s:j * s + WW] +=",
     "dxp[:, :, i:i + HH, j:j + WW] +=", ["conv_backward_naive", "dx is wrong", "stride 2"]),
    ("off-by-one padding", "conv", "xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))\n    Ho",
     "xp = np.pad(x, ((0, 0), (0, 0), (p + 1, p + 1), (p + 1, p + 1)))\n    Ho", ["conv_forward_naive", "differs"]),
    ("db summed over the wrong axes", "conv", "db = dout.sum(axis=(0, 2, 3))", "db = dout.sum(axis=(1, 2, 3))",
     ["conv_backward_naive"]),
    ("average-pool backward for max-pool", "max_pool", "mask * dout[:, :, i, j][:, :, None, None]",
     "dout[:, :, i, j][:, :, None, None] / (ph * pw)", ["max_pool_backward_naive", "dx is wrong"]),
    ("1/N missing in softmax dx", "softmax", "dx /= N", "dx /= 1", ["softmax_loss", "constant factor"]),
    ("1/N missing in softmax loss", "softmax", ".sum() / N", ".sum()", ["softmax_loss", "loss differs", "random x (5, 4)"]),
    ("relu forward returns only out", "relu", "return np.maximum(0, x), x", "return np.maximum(0, x)",
     ["relu_forward must return (out, cache), got ndarray"]),
    ("conv forward returns only out", "conv", "return out, (x, w, b, conv_param)", "return out",
     ["conv_forward_naive must return (out, cache), got ndarray"]),
    ("affine forward returns a string", "affine", "return out, (x, w, b)", "return 'abc', (x, w, b)",
     ["affine_forward: output is not an array of numbers"]),
    ("no max subtraction", "softmax", "z = x - x.max(axis=1, keepdims=True)", "z = x", ["softmax_loss", "large scores", "got nan"]),
]


@pytest.mark.parametrize("bug,exercise,old,new,words", BUGS, ids=[b[0] for b in BUGS])
def test_planted_bug_is_caught_with_an_explanation(tmp_path, bug, exercise, old, new, words):
    assert SOLUTION.count(old) == 1, f"planting {bug!r}: text not found exactly once"
    results = _grade(tmp_path, SOLUTION.replace(old, new), only=exercise)
    r = results[exercise]
    assert r.status == FAIL, (bug, r.status, r.explanation)
    text = f"{r.explanation} | case: {r.case}"
    for w in words:
        assert w in text, (bug, w, text)


def test_syntax_error_and_import_error_are_reports_not_crashes(tmp_path, capsys):
    d = _student(tmp_path, "def affine_forward(x, w, b)\n    return x\n")
    load = load_student(d)
    assert load.module is None and "SyntaxError" in load.error and ":1" in load.error
    assert main(["exercise", "check", str(d)]) == 1
    assert "SyntaxError" in capsys.readouterr().out
    d = _student(tmp_path, "import numpy as np\nraise RuntimeError('boom at import')\n")
    load = load_student(d)
    assert load.module is None and "RuntimeError: boom at import" in load.error and ":2" in load.error


def test_cli_new_refuses_to_overwrite_without_force(tmp_path, capsys):
    d = tmp_path / "ws"
    assert main(["exercise", "new", str(d)]) == 0
    assert sorted(p.name for p in d.iterdir()) == ["README.md", "layers.py", "walkthrough.ipynb"]
    (d / "walkthrough.ipynb").write_text("{}")  # any one existing file protects the workspace
    (d / "layers.py").unlink()
    assert main(["exercise", "new", str(d)]) == 2
    assert "walkthrough.ipynb" in capsys.readouterr().err
    (d / "layers.py").write_text("# my work\n")
    assert main(["exercise", "new", str(d)]) == 2
    assert "already exist" in capsys.readouterr().err
    assert (d / "layers.py").read_text() == "# my work\n"
    assert main(["exercise", "new", str(d), "--force"]) == 0
    assert "NotImplementedError" in (d / "layers.py").read_text()


def test_cli_check_exit_codes_and_json(tmp_path, capsys):
    d = _student(tmp_path, SOLUTION)
    assert main(["exercise", "check", str(d), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["passed"] is True and [e["status"] for e in data["exercises"]] == [PASS] * 5
    (d / "layers.py").write_text(SOLUTION.replace("dx /= N", "dx /= 1"))
    assert main(["exercise", "check", str(d), "--only", "softmax"]) == 1
    out = capsys.readouterr().out
    assert "softmax   FAIL" in out and "smallest failing case" in out
    assert main(["exercise", "check", str(d), "--only", "nope"]) == 2
    for bad in (["--steps", "0"], ["--seconds", "-1"], ["--timeout", "0"], ["--seed", "x"]):
        assert main(["exercise", "check", str(d), "--train", *bad]) == 2, bad
    assert main(["exercise", "check", str(tmp_path / "missing")]) == 2


def test_train_needs_every_check_to_pass(tmp_path, capsys):
    d = tmp_path / "ws"
    new_workspace(d)
    assert main(["exercise", "check", str(d), "--train"]) == 1
    assert "--train skipped" in capsys.readouterr().out
    assert main(["exercise", "check", str(d), "--train", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["passed"] is False and data["train"] is None


def test_train_json_reports_the_training_run(tmp_path, capsys):
    d = _student(tmp_path, SOLUTION)
    assert main(["exercise", "check", str(d), "--train", "--json", "--steps", "3", "--seed", "1"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)  # progress goes to stderr, so stdout is pure JSON
    assert data["passed"] is True
    t = data["train"]
    assert t["steps"] == t["planned_steps"] == 3 and t["stopped"] == "steps" and t["seed"] == 1
    assert 0.0 <= t["val_accuracy"] <= 1.0 and t["n_val"] == 1000
    assert "training: step 3/3" in captured.err


def test_train_time_cap_is_reported(tmp_path, capsys):
    d = _student(tmp_path, SOLUTION)
    assert main(["exercise", "check", str(d), "--train", "--steps", "100000", "--seconds", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "100000 Adam steps, at most 0.2 s" in out and "stopped by the 0.2 s cap of 100000 steps" in out


def test_train_student_runs_the_students_functions(tmp_path):
    from minivgg.exercises.train import train_student

    rng = np.random.default_rng(0)
    x, y = rng.random((20, 3, 8, 8)).astype(np.float32), rng.integers(0, 3, 20)
    module = load_student(_student(tmp_path, SOLUTION)).module
    seen = []
    res = train_student(module, x, y, x[:10], y[:10], steps=4, batch=10, progress=lambda d, t: seen.append((d, t)))
    assert res["steps"] == 4 and 0.0 <= res["val_accuracy"] <= 1.0 and np.isfinite(res["train_loss_last50"])
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    capped = train_student(module, x, y, x[:10], y[:10], steps=10**6, seconds=0.05, batch=10)
    assert capped["stopped"] == "time cap" and 1 <= capped["steps"] < 10**6
    broken = load_student(_student(tmp_path, SOLUTION.replace("return np.maximum(0, x), x",
                                                               "raise RuntimeError('relu broke')"))).module
    with pytest.raises(RuntimeError, match="relu broke"):  # proves the student's relu_forward is what runs
        train_student(broken, x, y, x[:10], y[:10], steps=2, batch=10)
    with pytest.raises(ValueError, match="steps must be an int >= 1"):
        train_student(module, x, y, x[:10], y[:10], steps=0)


def test_learning_rate_drops_tenfold_for_the_last_fifth():
    from minivgg.exercises.train import learning_rate

    assert [learning_rate(s, 10, 1.0) for s in range(10)] == [1.0] * 8 + [0.1] * 2


def test_training_inputs_are_standardized_per_channel():
    from minivgg.exercises.train import standardize

    rng = np.random.default_rng(1)
    x = (rng.random((50, 3, 4, 4)) * np.array([1.0, 2.0, 0.5])[:, None, None] + np.array([0.2, -1.0, 3.0])[:, None, None])
    xt, xv = standardize(x.astype(np.float32), x[:5].astype(np.float32))
    for c in range(3):
        assert abs(xt[:, c].mean()) < 1e-5 and abs(xt[:, c].std() - 1) < 1e-4
        want = (x[:5, c] - x[:, c].mean()) / x[:, c].std()
        assert np.allclose(xv[:, c], want, atol=1e-5)  # validation uses the *training* statistics
    assert xt.dtype == np.float32


HANG_AT_IMPORT = "import numpy as np\nx = 0\nwhile True:\n    x += 1\n"


def test_an_endless_loop_at_import_is_a_timeout_report(tmp_path, capsys):
    d = _student(tmp_path, HANG_AT_IMPORT)
    load = load_student(d, timeout=0.3)
    assert load.module is None
    assert "did not finish within 0.3 s" in load.error and "loop forever" in load.error and "layers.py:" in load.error
    assert main(["exercise", "check", str(d), "--timeout", "0.3"]) == 1
    assert "did not finish within 0.3 s" in capsys.readouterr().out
    assert main(["exercise", "check", str(d), "--timeout", "0.3", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["passed"] is False and "did not finish" in data["load_error"]
    # negative control: the same limit does not fire on a module that imports normally
    assert load_student(_student(tmp_path, SOLUTION), timeout=0.3).error is None


def test_timeout_off_the_main_thread_also_returns(tmp_path):
    import threading

    # Off the main thread the import runs in a thread that is abandoned, not stopped: a 3 s sleep
    # (not an endless loop) so that the abandoned thread does not spin for the rest of the test session.
    d = _student(tmp_path, "import time\ntime.sleep(3)\n")
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("load", load_student(d, timeout=0.3)))
    t.start()
    t.join(20)
    assert not t.is_alive() and "did not finish within 0.3 s" in box["load"].error


def test_an_endless_loop_in_a_function_fails_that_exercise_only(tmp_path):
    text = SOLUTION.replace("def relu_backward(dout, cache):\n", "def relu_backward(dout, cache):\n    while True:\n        pass\n")
    assert text != SOLUTION
    load = load_student(_student(tmp_path, text))
    (relu,) = check_module(load.module, only="relu", timeout=0.3)
    assert relu.status == FAIL and "did not finish within 0.3 s" in relu.explanation and "endless loop" in relu.explanation
    assert relu.case == "fixed x (2, 3)"
    # the checker is still usable afterwards (no alarm left pending), and other exercises are unaffected
    assert all(check_module(load.module, only=n)[0].status == PASS for n in ("affine", "conv", "max_pool", "softmax"))


def test_coordinate_errors_show_where_a_backward_is_wrong(tmp_path):
    from minivgg.exercises.explore import case_labels, coordinate_errors

    good = load_student(_student(tmp_path, SOLUTION)).module
    for name in ("affine", "relu", "conv", "max_pool", "softmax"):
        rows = coordinate_errors(good, name)
        assert rows and all(r.rel_error.shape == r.analytic.shape == r.numerical.shape for r in rows)
        assert max(float(r.rel_error.max()) for r in rows) < 1e-6, name
    assert len(case_labels("conv")) == 4
    bad = load_student(_student(tmp_path, SOLUTION.replace("dx /= N", "dx /= 1"))).module
    (row,) = coordinate_errors(bad, "softmax", case=1)  # random x (5, 4): analytic = 5 x numerical
    assert np.allclose(row.analytic, 5 * row.numerical) and row.rel_error.min() > 0.5
    relu = load_student(_student(tmp_path, SOLUTION.replace("return dout * (cache > 0)", "return dout * (cache < 0)"))).module
    (row,) = coordinate_errors(relu, "relu")
    assert row.rel_error.min() > 0.5  # inputs are kink-free and nonzero: an inverted mask is wrong everywhere
    with pytest.raises(ValueError, match="out of range"):
        coordinate_errors(good, "relu", case=9)
