import pytest

from skiplab.train import PRESETS, TrainConfig, preset


def test_presets_validate_and_he_recipe_matches_the_paper():
    for cfg in PRESETS.values():
        cfg.validate()
    he = PRESETS["he2015-cifar"]
    # He et al. 2015, sec. 4.2: momentum 0.9, weight decay 1e-4, batch 128, lr 0.1 divided by 10 at 32k and 48k
    # of 64k iterations (64k / 391 batches per epoch ≈ 164 epochs).
    assert (he.lr, he.momentum, he.weight_decay, he.batch_size, he.schedule) == (0.1, 0.9, 1e-4, 128, "step")
    assert he.milestones == (0.5, 0.75) and he.epochs == round(64_000 / 391)


def test_preset_overrides_and_unknown_preset():
    cfg = preset("quick", epochs=7, lr=None)
    assert cfg.epochs == 7 and cfg.lr == PRESETS["quick"].lr
    with pytest.raises(ValueError, match="preset must be one of .*he2015-cifar"):
        preset("fast")


@pytest.mark.parametrize(
    "changes, word",
    [
        ({"epochs": 0}, "epochs"),
        ({"lr": float("nan")}, "lr"),
        ({"lr": -1.0}, "lr"),
        ({"schedule": "linear"}, "schedule must be one of"),
        ({"milestones": (0.8, 0.2)}, "milestones"),
        ({"warmup_epochs": 50.0}, "warmup_epochs"),
        ({"device": "tpu"}, "device must be one of"),
        ({"colour": "red"}, "unknown config field"),
    ],
)
def test_bad_fields_name_the_option(changes, word):
    with pytest.raises(ValueError, match=word):
        TrainConfig().replace(**changes)


def test_round_trip_through_dict():
    cfg = TrainConfig(model="plainconv56", milestones=(0.3, 0.6), width=8)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
