import pytest

from skiplab.experiments.variants import PUBLISHED_ERROR, ShortcutVariantsConfig, shortcut_variants
from skiplab.experiments.verdict import compare


def test_each_variant_is_trained_on_every_seed_and_judged_against_identity_by_the_paired_rule():
    cfg = ShortcutVariantsConfig(variants=("identity", "dropout"), seeds=(0, 1), epochs=1, warmup_epochs=0.5, workers=1)
    result = shortcut_variants(cfg)
    assert sorted(result.runs) == ["dropout-s0", "dropout-s1", "identity-s0", "identity-s1"]
    identity, dropout = result.rows
    assert identity.summary == "baseline" and identity.comparison is None
    for row in result.rows:
        assert row.best_train_loss == [result.runs[f"{row.variant}-s{s}"]["best_train_loss"] for s in cfg.seeds]
        assert len(row.init_grad_norms) == 9 and row.init_first_last == row.init_grad_norms[0] / row.init_grad_norms[-1]
        assert row.published_test_error == PUBLISHED_ERROR[row.variant]
    again = compare("dropout", 20, 20, identity.best_train_loss, dropout.best_train_loss)
    assert dropout.comparison == again.to_dict()
    assert dropout.summary == {
        "deeper is worse": "worse than identity",
        "deeper is better": "better than identity",
    }.get(again.summary, again.summary)
    assert "against the identity shortcut" in result.rule and "deeper" not in result.rule
    assert "Training error" not in result.rule  # only the best training loss is compared
    assert result.to_dict()["rows"][1]["model"] == "resnet1d20_dropout"


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"depth": 32}, "depth must be 20 or 56"),
        ({"variants": ("scale",)}, "must start with 'identity'"),
        ({"variants": ("identity", "wormhole")}, "variant must be one of"),
        ({"data": "digits"}, "mnist1d"),
    ],
)
def test_bad_config_is_refused_with_its_reason(changes, words):
    with pytest.raises(ValueError, match=words):
        ShortcutVariantsConfig(**changes)


def test_the_shipped_variants_follow_from_their_runs_by_the_rule():
    from skiplab.experiments.results import load_results
    from skiplab.experiments.variants import SAYS, variants_rule

    data = load_results("shortcut_variants")
    assert data["rule"] == variants_rule(data["config"]["alpha"])
    rows = {r["variant"]: r for r in data["rows"]}
    seeds = data["config"]["seeds"]
    assert len(seeds) >= 3 and list(rows) == data["config"]["variants"]
    for v, row in rows.items():
        assert row["best_train_loss"] == [data["runs"][f"{v}-s{s}"]["best_train_loss"] for s in seeds]
        if v == "identity":
            continue
        again = compare(v, data["config"]["depth"], data["config"]["depth"], rows["identity"]["best_train_loss"],
                        row["best_train_loss"], alpha=data["config"]["alpha"])  # fmt: skip
        assert row["comparison"] == again.to_dict() and row["summary"] == SAYS.get(again.summary, again.summary)
    # What the page says the shipped runs show: dropout on the shortcut is worse than the identity on every seed.
    assert rows["dropout"]["summary"] == "worse than identity"


def test_the_cli_names_a_bad_option():
    from typer.testing import CliRunner

    from skiplab.cli import app

    for args, flag in ((["--depth", "3"], "--depth"), (["--seeds", "x"], "--seeds"), (["--variants", "scale"], "")):
        out = CliRunner().invoke(app, ["experiment", "shortcut-variants", *args])
        assert out.exit_code == 2 and flag in out.output, out.output
