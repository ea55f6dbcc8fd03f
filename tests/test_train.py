"""The trainer: exact resume, the NaN guard, history.json, atomic checkpoints, architecture checks."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from minivgg import VGG, training as tr
from minivgg.configs import VGGConfig
from minivgg.training import trainer as trainer_module


# A VGG-11 at 1/16 width (4..32 channels) with 16-wide fc6/fc7: ~25k parameters,
# about 0.1 s per epoch of 96 images. Dropout, flips and crops are all on, so
# every random stream matters for the resume test.
def tiny_spec(seed=None, **kw) -> VGGConfig:
    """The architecture (the model's seed is the TrainConfig's; ``seed`` is accepted for readability)."""
    fields = {"width": 0.0625, "fc_width": 16, "dropout": 0.5, "num_classes": 10, "input_size": 32, **kw}
    return VGGConfig.from_arch(fields.pop("arch", "vgg11"), **fields)


def tiny_model(seed=3, **kw) -> VGG:
    return VGG(tiny_spec(**kw), seed=seed)


def tiny_config(**kw) -> tr.TrainConfig:
    base = dict(epochs=3, batch_size=32, optimizer="sgd", lr=0.02, schedule="step", lr_step=1, lr_gamma=0.5,
                flip=True, crop_pad=2, seed=3)
    return tr.TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def data():
    return tr.load_dataset("shapes", n_train=96, n_val=32, data_seed=0)


def params_of(model) -> dict:
    return {k: v.copy() for k, v in model.params.items()}


def assert_same_params(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), f"{k} differs"


def strip_seconds(history):
    return [{k: v for k, v in e.items() if k not in ("seconds", "images_per_s")} for e in history]


# ---------------------------------------------------------------- resume
@pytest.mark.parametrize("optimizer,schedule", [("sgd", "step"), ("adam", "plateau")])
def test_resume_equals_uninterrupted_bit_for_bit(tmp_path, data, optimizer, schedule):
    cfg = tiny_config(optimizer=optimizer, schedule=schedule, lr=0.02 if optimizer == "sgd" else 2e-3)
    full = tr.train(data, cfg, arch=tiny_spec(seed=cfg.seed), out=tmp_path / "full")
    first = tr.train(data, tr.TrainConfig(**{**cfg.to_json(), "epochs": 1}), arch=tiny_spec(seed=cfg.seed),
                     out=tmp_path / "resumed")
    assert len(first.history) == 1
    resumed = tr.train(data, cfg, out=tmp_path / "resumed", resume=True)
    assert resumed.epochs_run == 2 and len(resumed.history) == 3
    assert_same_params(params_of(full.model), params_of(resumed.model))
    assert strip_seconds(full.history) == strip_seconds(resumed.history)
    # the saved optimiser state matches too
    a, b = tr.read_checkpoint(full.checkpoint), tr.read_checkpoint(resumed.checkpoint)
    assert a.optim.keys() == b.optim.keys()
    for k in a.optim:
        assert np.array_equal(a.optim[k], b.optim[k]), k


def test_resume_without_restoring_the_generators_differs(tmp_path, data, monkeypatch):
    # negative control for the test above: if the shuffling/augmentation/dropout
    # generators were not restored, the resumed run would not match.
    cfg = tiny_config()
    full = tr.train(data, cfg, arch=tiny_spec(seed=cfg.seed))
    tr.train(data, tr.TrainConfig(**{**cfg.to_json(), "epochs": 1}), arch=tiny_spec(seed=cfg.seed),
             out=tmp_path)
    monkeypatch.setattr(trainer_module, "set_rng_state", lambda rng, state, what: None)
    resumed = tr.train(data, cfg, out=tmp_path, resume=True)
    a, b = params_of(full.model), params_of(resumed.model)
    assert any(not np.array_equal(a[k], b[k]) for k in a)


def test_same_seed_same_result_and_other_seed_differs(data):
    runs = [tr.train(data, tiny_config(epochs=1, seed=s), arch=tiny_spec(seed=s)) for s in (5, 5, 6)]
    assert_same_params(params_of(runs[0].model), params_of(runs[1].model))
    assert not np.array_equal(runs[0].model.params["fc8.w"], runs[2].model.params["fc8.w"])


def test_dropout_generator_state_is_in_the_checkpoint(tmp_path, data):
    res = tr.train(data, tiny_config(epochs=1), arch=tiny_spec(seed=3), out=tmp_path)
    meta = tr.read_checkpoint(res.checkpoint).meta
    for layer in ("drop6", "drop7"):
        saved = json.loads(meta["rng"]["dropout"][layer])
        assert saved == res.model.layers[layer].rng.bit_generator.state
    assert set(meta["rng"]) == {"shuffle", "augment", "dropout"}


# ---------------------------------------------------------------- NaN guard
def test_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path, data):
    cfg = tiny_config(epochs=1)
    tr.train(data, cfg, arch=tiny_spec(seed=cfg.seed), out=tmp_path)
    ckpt, hist = tmp_path / tr.CHECKPOINT_NAME, tmp_path / tr.HISTORY_NAME
    before = ckpt.read_bytes(), hist.read_bytes()
    trainer = tr.Trainer(tiny_model(seed=cfg.seed), data, tr.TrainConfig(**{**cfg.to_json(), "epochs": 2}),
                         tmp_path)
    trainer.restore(ckpt)
    trainer.model.params["fc8.b"][0] = np.nan  # poison: every logit row now has a NaN
    with pytest.raises(tr.TrainingDiverged) as err:
        trainer.fit()
    msg = str(err.value)
    assert "nan" in msg and "epoch 2, batch 1" in msg and str(ckpt) in msg and "intact" in msg
    assert (ckpt.read_bytes(), hist.read_bytes()) == before
    assert sorted(os.listdir(tmp_path)) == sorted([tr.CHECKPOINT_NAME, tr.HISTORY_NAME])  # no temp files
    # the intact checkpoint still loads
    model, _ = tr.model_from_checkpoint(ckpt)
    assert np.isfinite(model.params["fc8.b"]).all()


def test_nan_guard_negative_control_without_poison_the_checkpoint_advances(tmp_path, data):
    cfg = tiny_config(epochs=1)
    tr.train(data, cfg, arch=tiny_spec(seed=cfg.seed), out=tmp_path)
    before = (tmp_path / tr.CHECKPOINT_NAME).read_bytes()
    tr.train(data, tr.TrainConfig(**{**cfg.to_json(), "epochs": 2}), out=tmp_path, resume=True)
    assert (tmp_path / tr.CHECKPOINT_NAME).read_bytes() != before
    assert len(tr.load_history(tmp_path / tr.HISTORY_NAME)) == 2


def test_infinite_loss_from_a_huge_learning_rate_is_caught(data):
    cfg = tiny_config(epochs=2, lr=1e30, schedule="none", crop_pad=0)
    with pytest.raises(tr.TrainingDiverged, match="nothing was saved"):
        tr.train(data, cfg, arch=tiny_spec(seed=cfg.seed, dropout=0.0))


# ---------------------------------------------------------------- history.json
def test_history_json_schema(tmp_path, data):
    res = tr.train(data, tiny_config(epochs=2), arch=tiny_spec(seed=3), out=tmp_path)
    history = json.loads((tmp_path / tr.HISTORY_NAME).read_text())
    assert isinstance(history, list) and len(history) == 2
    for i, entry in enumerate(history, 1):
        assert set(tr.HISTORY_KEYS) <= set(entry)
        assert entry["epoch"] == i
        for key in ("train_acc", "val_acc"):
            assert 0.0 <= entry[key] <= 1.0
        for key in ("train_loss", "val_loss", "seconds"):
            assert isinstance(entry[key], float) and math.isfinite(entry[key]) and entry[key] > 0
    assert history[1]["seconds"] > history[0]["seconds"]  # cumulative
    # val accuracy is a fraction of the 32 validation images
    assert all(abs(e["val_acc"] * 32 - round(e["val_acc"] * 32)) < 1e-9 for e in history)
    assert history == json.loads(json.dumps(res.history))


def test_history_values_match_an_independent_evaluation(tmp_path, data):
    res = tr.train(data, tiny_config(epochs=1), arch=tiny_spec(seed=3))
    logits = res.model.forward(data.preprocess(data.x_val))
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    loss = -np.mean(np.log(p[np.arange(len(p)), data.y_val]))
    acc = np.mean(logits.argmax(1) == data.y_val)
    assert res.history[0]["val_acc"] == pytest.approx(acc)
    assert res.history[0]["val_loss"] == pytest.approx(loss, rel=1e-5)


# ---------------------------------------------------------------- atomic writes (see also test_fileio.py)
def test_checkpoint_write_failure_keeps_the_previous_checkpoint(tmp_path, data, monkeypatch):
    res = tr.train(data, tiny_config(epochs=1), arch=tiny_spec(seed=3), out=tmp_path)
    before = res.checkpoint.read_bytes()
    real_savez = np.savez

    def failing_savez(f, **arrays):
        real_savez(f, **{k: arrays[k] for k in list(arrays)[:3]})  # part of the file...
        raise OSError("simulated crash mid-write")

    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(OSError, match="simulated crash"):
        tr.train(data, tiny_config(epochs=2), out=tmp_path, resume=True)
    assert res.checkpoint.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == sorted([tr.CHECKPOINT_NAME, tr.HISTORY_NAME])


def test_checkpoint_loads_without_pickle_and_rebuilds_the_model(tmp_path, data):
    res = tr.train(data, tiny_config(epochs=1), arch=tiny_spec(seed=3, arch="vgg13"), out=tmp_path)
    with np.load(res.checkpoint, allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)
    model, ckpt = tr.model_from_checkpoint(res.checkpoint)
    assert model.arch == "vgg13" and ckpt.config == res.model.config
    x = data.preprocess(data.x_val)
    assert np.array_equal(model.forward(x), res.model.forward(x))
    assert ckpt.preprocess == data.preprocess


def test_corrupt_or_foreign_files_are_reported(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(tr.CheckpointError, match="not a readable minivgg .npz"):
        tr.read_checkpoint(bad)
    other = tmp_path / "other.npz"
    np.savez(other, weights=np.zeros(3))
    with pytest.raises(tr.CheckpointError, match="no __minivgg__ record"):
        tr.read_checkpoint(other)
    with pytest.raises(FileNotFoundError):
        tr.read_checkpoint(tmp_path / "missing.npz")


# ---------------------------------------------------------------- wrong checkpoint / bad settings
def test_checkpoint_from_a_different_architecture_is_refused(tmp_path, data):
    res = tr.train(data, tiny_config(epochs=1), arch=tiny_spec(seed=3), out=tmp_path)
    other = tiny_model(seed=3, arch="vgg13")
    before = params_of(other)
    trainer = tr.Trainer(other, data, tiny_config(epochs=2))
    with pytest.raises(tr.CheckpointError, match="different architecture.*vgg11.*vgg13"):
        trainer.restore(res.checkpoint)
    assert_same_params(before, params_of(other))  # untouched
    with pytest.raises(tr.CheckpointError, match="fc_width: checkpoint 16 vs model 32"):
        tr.train(data, tiny_config(epochs=2), arch=tiny_spec(seed=3, fc_width=32), out=tmp_path, resume=True)


def test_resume_with_other_training_settings_is_refused(tmp_path, data):
    tr.train(data, tiny_config(epochs=1), arch=tiny_spec(seed=3), out=tmp_path)
    with pytest.raises(tr.CheckpointError, match="batch_size: checkpoint 32 vs now 16"):
        tr.train(data, tiny_config(epochs=2, batch_size=16), out=tmp_path, resume=True)


def test_existing_checkpoint_is_not_overwritten_without_resume(tmp_path, data):
    res = tr.train(data, tiny_config(epochs=1), arch=tiny_spec(seed=3), out=tmp_path)
    before = res.checkpoint.read_bytes()
    with pytest.raises(FileExistsError):
        tr.train(data, tiny_config(epochs=1), arch=tiny_spec(seed=3), out=tmp_path)
    assert res.checkpoint.read_bytes() == before


@pytest.mark.parametrize("lr", [0.0, -1e-3, float("nan"), float("inf")])
def test_learning_rate_must_be_positive(lr):
    with pytest.raises(ValueError, match="lr"):
        tr.TrainConfig(lr=lr)


def test_model_and_data_must_fit(data):
    with pytest.raises(ValueError, match="64x64.*32x32"):
        tr.Trainer(tiny_model(input_size=64), data, tiny_config())
    with pytest.raises(ValueError, match="5 classes"):
        tr.Trainer(tiny_model(num_classes=5), data, tiny_config())


# ---------------------------------------------------------------- data glue
def test_preprocess_subtracts_the_mean_and_pads_mnist_sized_images():
    pre = tr.Preprocess(mean=(0.25,), size=32)
    x = np.full((2, 1, 28, 28), 255, np.uint8)
    out = pre(x)
    assert out.shape == (2, 1, 32, 32) and out.dtype == np.float32
    assert np.all(out[:, :, 2:30, 2:30] == np.float32(0.75))  # 1.0 - 0.25
    assert np.all(out[:, :, :2] == 0) and np.all(out[:, :, :, 30:] == 0)  # border = the mean colour
    with pytest.raises(ValueError, match="32x32"):
        pre(np.zeros((1, 1, 40, 40), np.uint8))
    with pytest.raises(ValueError, match="1-channel"):
        pre(np.zeros((1, 3, 32, 32), np.uint8))


def test_load_dataset_shapes_splits_and_mean(data):
    assert data.x_train.shape == (96, 3, 32, 32) and data.x_val.shape == (32, 3, 32, 32)
    assert data.x_test.shape == (32, 3, 32, 32)
    assert not np.array_equal(data.x_val, data.x_test)
    assert np.allclose(data.preprocess.mean, data.x_train.mean(axis=(0, 2, 3), dtype=np.float64))
    assert data.num_classes == 10


def test_load_dataset_errors(tmp_path):
    with pytest.raises(ValueError, match="needs a data directory"):
        tr.load_dataset("cifar10")
    with pytest.raises(FileNotFoundError):
        tr.load_dataset("cifar10", tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError):
        tr.load_dataset("mnist", tmp_path)
    with pytest.raises(ValueError, match="unknown dataset"):
        tr.load_dataset("imagenet")


# ---------------------------------------------------------------- it learns
def test_short_training_run_lowers_the_loss_on_the_embedded_data():
    # 64 shapes, 25 epochs of 4 steps (~5 s): a VGG-11 at 1/8 width fits them, so the
    # training loss must fall far below chance (ln 10 = 2.30). The slow tour test below
    # shows the validation accuracy rising on unseen images too.
    data = tr.load_dataset("shapes", n_train=64, n_val=50, data_seed=1)
    cfg = tr.TrainConfig(epochs=25, batch_size=16, lr=1e-3, schedule="none", flip=False, seed=0)
    res = tr.train(data, cfg, arch=tr.recipe_config(data, fc_width=64))
    losses = [e["train_loss"] for e in res.history]
    assert losses[0] > 2.0 and losses[-1] < 0.7, losses
    assert min(losses[-5:]) < min(losses[:5]) - 1.0
    assert res.history[-1]["train_acc"] > 0.8


class Recorder(tr.TrainCallback):
    def __init__(self):
        self.events = []

    def on_fit_start(self, epochs_done, epochs):
        self.events.append(("fit", epochs_done, epochs))

    def on_epoch_start(self, epoch, n_batches):
        self.events.append(("epoch", epoch, n_batches))

    def on_batch_end(self, batch, images, loss, acc):
        self.events.append(("batch", batch, images, round(loss, 6), acc))

    def on_epoch_end(self, entry):
        self.events.append(("end", entry["epoch"], round(entry["train_loss"], 6)))


def test_callback_hears_every_step_and_epoch_and_the_library_prints_nothing(data, capsys):
    rec = Recorder()
    res = tr.train(data, tiny_config(epochs=2), arch=tiny_spec(), callback=rec)
    kinds = [e[0] for e in rec.events]
    # 96 images at batch 32: 3 steps per epoch
    assert kinds == ["fit", "epoch", "batch", "batch", "batch", "end", "epoch", "batch", "batch", "batch", "end"]
    assert rec.events[0] == ("fit", 0, 2) and rec.events[1] == ("epoch", 1, 3)
    assert [e[2] for e in rec.events if e[0] == "batch"][:3] == [32, 64, 96]
    # the running loss after the last step is the epoch's training loss
    assert rec.events[4][3] == rec.events[5][2] == round(res.history[0]["train_loss"], 6)
    assert capsys.readouterr() == ("", "")


@pytest.mark.slow
def test_tour_training_run_shows_the_loss_falling():
    from minivgg.cli.tour import format_tour_result

    # no time budget: all 6 epochs run however busy the machine, so nothing here depends on the clock
    result = tr.tour_training_run(seed=0, seconds_budget=float("inf"))
    losses = [e["train_loss"] for e in result.history]
    assert len(losses) >= 2 and losses[-1] < losses[0] - 0.2
    assert result.history[-1]["val_acc"] > 0.2  # chance is 0.1
    text = format_tour_result(result)
    assert "val acc" in text and f"{losses[-1]:.4f}" in text


def test_a_failed_restore_changes_nothing(tmp_path, data):
    res = tr.train(data, tiny_config(epochs=1), arch=tiny_spec(seed=3), out=tmp_path)
    with np.load(res.checkpoint, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    for key, bad in (("optim.velocity.fc8.w", np.zeros((2, 2), np.float32)),  # wrong shape
                     ("param.fc7.b", np.full(16, np.nan, np.float32))):  # non-finite weights
        broken = tmp_path / f"broken_{key}.npz"
        np.savez(broken, **{**arrays, key: bad})
        model = tiny_model(seed=3)
        trainer = tr.Trainer(model, data, tiny_config(epochs=2))
        before_params, before_opt = params_of(model), trainer.optimizer
        before_rng = trainer.shuffle_rng.bit_generator.state
        # the non-finite file is refused as it is read (a CheckpointError naming the parameter)
        with pytest.raises(tr.CheckpointError, match="cannot restore|parameter fc7.b holds NaN"):
            trainer.restore(broken)
        assert_same_params(before_params, params_of(model))
        assert trainer.optimizer is before_opt and trainer.epoch == 0 and trainer.history == []
        assert trainer.shuffle_rng.bit_generator.state == before_rng


def test_a_checkpoint_of_the_previous_layout_still_loads_and_resumes(tmp_path, data):
    """Format 1 of the trainer: a ``meta`` JSON entry with ``"format": 1`` and a ``"model"`` record."""
    cfg = tiny_config(epochs=1)
    res = tr.train(data, cfg, arch=tiny_spec(), out=tmp_path / "new")
    ckpt = tr.read_checkpoint(res.checkpoint)
    c = ckpt.config
    model_record = {"arch": c.arch, "config": c.to_dict()["layers"], "num_classes": c.num_classes,
                    "input_size": c.input_size, "in_channels": c.in_channels, "width": c.width,
                    "fc_width": c.fc_width, "dropout": c.dropout, "dtype": "float32", "init": "he", "seed": 3}
    arrays = {"meta": np.array(json.dumps({**ckpt.meta, "format": 1, "model": model_record}))}
    for prefix, group in (("param", ckpt.params), ("optim", ckpt.optim), ("sched", ckpt.sched)):
        arrays.update({f"{prefix}.{k}": v for k, v in group.items()})
    old_dir = tmp_path / "old"
    old_dir.mkdir()
    np.savez(old_dir / tr.CHECKPOINT_NAME, **arrays)
    old = tr.read_checkpoint(old_dir / tr.CHECKPOINT_NAME)
    assert old.config == c and old.meta["epoch"] == 1 and "model" not in old.meta
    model, _ = tr.model_from_checkpoint(old_dir / tr.CHECKPOINT_NAME)
    assert_same_params(params_of(model), params_of(res.model))
    # and training resumes from it exactly as from the new layout
    more = tr.TrainConfig(**{**cfg.to_json(), "epochs": 2})
    a = tr.train(data, more, out=old_dir, resume=True)
    b = tr.train(data, more, out=tmp_path / "new", resume=True)
    assert strip_seconds(a.history) == strip_seconds(b.history)
    assert_same_params(params_of(a.model), params_of(b.model))


def test_time_budget_stops_at_an_epoch_boundary_but_not_before_min_epochs(data):
    # a budget of a nanosecond: only the first epoch runs by default, min_epochs=2 makes it two
    one = tr.train(data, tiny_config(epochs=4), arch=tiny_spec(seed=3), max_seconds=1e-9)
    two = tr.train(data, tiny_config(epochs=4), arch=tiny_spec(seed=3), max_seconds=1e-9, min_epochs=2)
    assert [len(one.history), len(two.history)] == [1, 2]
    assert "time budget" in one.stopped_early and "after 2 epochs" in two.stopped_early
