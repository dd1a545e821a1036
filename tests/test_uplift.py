"""steward.monitoring.uplift: intervals against Newcombe (1998) and scipy, coverage by simulation, the
comparison within the intended action, segments, windows, holdout sizing and input errors.

Every expected figure is either a published one (Newcombe 1998, Table II) or computed here, from
scipy or a closed form written out in the test, never copied from the code under test.
"""

from __future__ import annotations

import itertools
import json
import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from steward.errors import InvalidInputError
from steward.model.policy import Policy, decide_batch
from steward.monitoring import uplift as uplift_module
from steward.monitoring.uplift import (
    UpliftResult,
    newcombe_interval,
    sample_size_for_uplift,
    uplift,
    uplift_by_segment,
    uplift_over_time,
    wilson_interval,
)

Z95 = float(stats.norm.ppf(0.975))


def arms_frame(treated: np.ndarray, control: np.ndarray, action: str = "contact") -> pd.DataFrame:
    """Predictions joined with outcomes: every row intends ``action``; ``control`` rows are held out."""
    return pd.DataFrame(
        {
            "intended_action": [action] * (len(treated) + len(control)),
            "holdout": [False] * len(treated) + [True] * len(control),
            "decision": [action] * len(treated) + ["none"] * len(control),
            "value": np.concatenate([np.asarray(treated), np.asarray(control)]).astype(float),
        }
    )


def zeros_and_ones(successes: int, trials: int) -> np.ndarray:
    return np.array([1.0] * successes + [0.0] * (trials - successes))


def scipy_wilson(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    interval = stats.binomtest(successes, trials).proportion_ci(
        confidence_level=confidence, method="wilson"
    )
    return float(interval.low), float(interval.high)


def binomial_acceptance(reps: int, rate: float, tail: float = 0.0005) -> tuple[float, float]:
    """The range a binomial count of ``reps`` trials at ``rate`` leaves only with probability 2·tail."""
    return float(stats.binom.ppf(tail, reps, rate)), float(stats.binom.isf(tail, reps, rate))


# --- intervals on counts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("successes", "trials", "confidence"),
    [(0, 10, 0.95), (10, 10, 0.95), (3, 17, 0.9), (81, 263, 0.95), (500, 1000, 0.99), (1, 2, 0.8)],
)
def test_wilson_interval_equals_scipys(successes: int, trials: int, confidence: float) -> None:
    assert wilson_interval(successes, trials, confidence) == pytest.approx(
        scipy_wilson(successes, trials, confidence), abs=1e-12
    )


# Newcombe RG. Interval estimation for the difference between independent proportions: comparison
# of eleven methods. Stat Med 1998;17:873-890, Table II, method 10 (score, no continuity correction),
# printed to 4 decimals. The same figures are reproduced by several public implementations.
NEWCOMBE_TABLE_II = [
    ((56, 70, 48, 80), (0.0524, 0.3339)),
    ((9, 10, 3, 10), (0.1705, 0.8090)),
    ((6, 7, 2, 7), (0.0582, 0.8062)),
    ((5, 56, 0, 29), (-0.0381, 0.1926)),
    ((0, 10, 0, 20), (-0.1611, 0.2775)),
    ((0, 10, 0, 10), (-0.2775, 0.2775)),
    ((10, 10, 0, 20), (0.6791, 1.0000)),
    ((10, 10, 0, 10), (0.6075, 1.0000)),
]


@pytest.mark.parametrize(("counts", "published"), NEWCOMBE_TABLE_II)
def test_newcombe_interval_reproduces_newcombe_1998_table_ii(
    counts: tuple[int, int, int, int], published: tuple[float, float]
) -> None:
    assert newcombe_interval(*counts) == pytest.approx(published, abs=5.001e-5)


def test_newcombe_interval_is_built_from_scipys_wilson_intervals() -> None:
    generator = np.random.default_rng(11)
    for _ in range(50):
        n_treated, n_control = (int(n) for n in generator.integers(1, 400, size=2))
        k_treated = int(generator.integers(0, n_treated + 1))
        k_control = int(generator.integers(0, n_control + 1))
        low_1, high_1 = scipy_wilson(k_treated, n_treated)
        low_2, high_2 = scipy_wilson(k_control, n_control)
        p_1, p_2 = k_treated / n_treated, k_control / n_control
        expected = (
            p_1 - p_2 - math.sqrt((p_1 - low_1) ** 2 + (high_2 - p_2) ** 2),
            p_1 - p_2 + math.sqrt((high_1 - p_1) ** 2 + (p_2 - low_2) ** 2),
        )
        assert newcombe_interval(k_treated, n_treated, k_control, n_control) == pytest.approx(
            expected, abs=1e-12
        )


def test_binary_uplift_interval_is_newcombes_and_p_value_is_the_pooled_z_test() -> None:
    result = uplift(arms_frame(zeros_and_ones(56, 70), zeros_and_ones(48, 80)))
    assert result.outcome_type == "binary"
    assert result.uplift == pytest.approx(56 / 70 - 48 / 80)
    assert result.uplift_interval == pytest.approx((0.0524, 0.3339), abs=5.001e-5)
    # The pooled two-proportion z-test is the chi-square test of the 2x2 table without correction.
    table = [[56, 70 - 56], [48, 80 - 48]]
    expected_p = stats.chi2_contingency(table, correction=False).pvalue
    assert result.p_value == pytest.approx(expected_p, rel=1e-10)
    assert result.treated_mean_interval == pytest.approx(scipy_wilson(56, 70), abs=1e-12)
    assert result.control_mean_interval == pytest.approx(scipy_wilson(48, 80), abs=1e-12)


def test_binary_relative_uplift_is_katzs_log_interval() -> None:
    k_1, n_1, k_2, n_2 = 130, 400, 90, 380
    result = uplift(arms_frame(zeros_and_ones(k_1, n_1), zeros_and_ones(k_2, n_2)))
    ratio = (k_1 / n_1) / (k_2 / n_2)
    spread = math.sqrt(1 / k_1 - 1 / n_1 + 1 / k_2 - 1 / n_2)
    assert result.relative_uplift == pytest.approx(ratio - 1)
    assert result.relative_uplift_interval == pytest.approx(
        (ratio * math.exp(-Z95 * spread) - 1, ratio * math.exp(Z95 * spread) - 1)
    )


def test_continuous_uplift_equals_scipys_welch_t_test_and_interval() -> None:
    generator = np.random.default_rng(5)
    treated = generator.gamma(2.0, 30.0, size=400)
    control = generator.gamma(2.0, 25.0, size=90)
    for confidence in (0.9, 0.95, 0.99):
        result = uplift(arms_frame(treated, control), confidence=confidence)
        welch = stats.ttest_ind(treated, control, equal_var=False)
        expected = welch.confidence_interval(confidence_level=confidence)
        assert result.outcome_type == "continuous"
        assert result.uplift == pytest.approx(treated.mean() - control.mean())
        assert result.uplift_interval == pytest.approx((expected.low, expected.high), rel=1e-10)
        assert result.p_value == pytest.approx(welch.pvalue, rel=1e-10)


def test_continuous_relative_uplift_is_the_delta_method_on_the_log_ratio() -> None:
    generator = np.random.default_rng(6)
    treated, control = generator.exponential(12.0, 300), generator.exponential(10.0, 150)
    result = uplift(arms_frame(treated, control))
    log_ratio = math.log(treated.mean() / control.mean())
    spread = math.sqrt(
        treated.var(ddof=1) / (len(treated) * treated.mean() ** 2)
        + control.var(ddof=1) / (len(control) * control.mean() ** 2)
    )
    assert result.relative_uplift == pytest.approx(math.exp(log_ratio) - 1)
    assert result.relative_uplift_interval == pytest.approx(
        (math.exp(log_ratio - Z95 * spread) - 1, math.exp(log_ratio + Z95 * spread) - 1)
    )


# --- coverage ---------------------------------------------------------------------------------------


def test_binary_interval_covers_the_true_uplift_at_its_nominal_rate() -> None:
    generator = np.random.default_rng(2026)
    reps, control_rate, true_uplift = 300, 0.3, 0.05
    covered = 0
    for _ in range(reps):
        treated = (generator.random(900) < control_rate + true_uplift).astype(float)
        control = (generator.random(100) < control_rate).astype(float)
        low, high = uplift(arms_frame(treated, control)).uplift_interval or (math.nan, math.nan)
        covered += low <= true_uplift <= high
    lowest, highest = binomial_acceptance(reps, 0.95)
    assert lowest <= covered <= highest


def test_continuous_interval_covers_the_true_uplift_at_its_nominal_rate() -> None:
    generator = np.random.default_rng(2027)
    reps, control_mean, treated_mean = 300, 40.0, 46.0
    covered = 0
    for _ in range(reps):
        treated = generator.exponential(treated_mean, 600)
        control = generator.exponential(control_mean, 150)
        low, high = uplift(arms_frame(treated, control)).uplift_interval or (math.nan, math.nan)
        covered += low <= treated_mean - control_mean <= high
    lowest, highest = binomial_acceptance(reps, 0.95)
    assert lowest <= covered <= highest


# --- the comparison within the intended action -----------------------------------------------------


def churn_frame(
    n_entities: int, effect: float, seed: int, review_band: bool = False
) -> pd.DataFrame:
    """A real policy's decisions on uniform scores; retention falls with the score, and a contact
    adds ``effect`` to the chance of staying. Email does nothing."""
    policy = Policy.from_dict(
        {
            "thresholds": [{"at": 0.7, "action": "contact"}, {"at": 0.4, "action": "email"}],
            "holdout": 0.2,
            "salt": f"test-{seed}",
            **({"review_band": [0.7, 0.75]} if review_band else {}),
        }
    )
    generator = np.random.default_rng(seed)
    scores = generator.random(n_entities)
    frame = decide_batch(policy, scores, [f"customer-{i}" for i in range(n_entities)])
    frame = frame.rename(columns={"action": "decision"})
    contacted = (frame["decision"] == "contact").to_numpy()
    stay_chance = 0.9 - 0.6 * scores + effect * contacted
    frame["value"] = (generator.random(n_entities) < stay_chance).astype(float)
    return frame


def test_uplift_recovers_the_true_effect_where_actioned_vs_all_holdout_is_biased() -> None:
    effect = 0.1
    frame = churn_frame(20_000, effect, seed=1)
    result = uplift(frame)
    low, high = result.uplift_interval or (math.nan, math.nan)
    assert low <= effect <= high
    # The naive comparison puts the holdout's low-score (high-retention) entities in the control.
    naive = (
        frame.loc[frame["decision"] == "contact", "value"].mean()
        - frame.loc[frame["holdout"], "value"].mean()
    )
    assert not low <= naive <= high
    assert result.n_control == int(
        (frame["holdout"] & (frame["intended_action"] == "contact")).sum()
    )


def test_review_rows_stay_in_the_treated_arm_and_the_share_actioned_says_so() -> None:
    frame = churn_frame(5_000, 0.1, seed=2, review_band=True)
    result = uplift(frame)
    intended = frame[frame["intended_action"] == "contact"]
    treated = intended[~intended["holdout"]]
    assert (treated["decision"] == "review").any()
    assert result.n_treated == len(treated)
    assert result.treated_share_actioned == pytest.approx((treated["decision"] == "contact").mean())


def test_rows_without_an_outcome_yet_are_left_out_and_counted() -> None:
    frame = arms_frame(zeros_and_ones(60, 100), zeros_and_ones(40, 100))
    frame.loc[[0, 1, 150], "value"] = np.nan
    result = uplift(frame)
    assert (result.n_treated, result.n_control, result.n_without_outcome) == (98, 99, 3)
    assert result.treated_mean == pytest.approx(58 / 98)


def test_other_intended_actions_are_measured_on_their_own_rows() -> None:
    frame = churn_frame(8_000, 0.1, seed=3)
    result = uplift(frame, action="email")
    email = frame[frame["intended_action"] == "email"]
    assert result.n_treated == int((~email["holdout"]).sum())
    assert result.uplift == pytest.approx(
        email.loc[~email["holdout"], "value"].mean() - email.loc[email["holdout"], "value"].mean()
    )


@pytest.mark.parametrize(
    ("values", "requested", "expected"),
    [
        ([True, False] * 40, "auto", "binary"),
        ([1, 0] * 40, "auto", "binary"),
        ([1.5, 0.0] * 40, "auto", "continuous"),
        ([1, 0] * 40, "continuous", "continuous"),
    ],
)
def test_outcome_type_is_binary_for_zero_one_outcomes_unless_told(
    values: list[float], requested: str, expected: str
) -> None:
    frame = pd.DataFrame(
        {"intended_action": "contact", "holdout": [False, False, True, True] * 20, "value": values}
    )
    result = uplift(frame, outcome_type=requested)  # type: ignore[arg-type]
    assert result.outcome_type == expected
    assert result.method == ("newcombe-hybrid-score" if expected == "binary" else "welch-t")


def test_constant_outcomes_give_the_difference_exactly() -> None:
    frame = arms_frame(np.full(40, 12.5), np.full(40, 10.0))
    result = uplift(frame)
    assert result.uplift_interval == (2.5, 2.5)
    assert result.p_value == 0.0
    same = uplift(arms_frame(np.full(40, 10.0), np.full(40, 10.0)))
    assert (same.uplift_interval, same.p_value, same.significant) == ((0.0, 0.0), 1.0, False)


# --- value, number needed to treat, not enough data, reporting ----------------------------------------


def test_value_per_decision_carries_the_uplift_interval_through() -> None:
    frame = arms_frame(zeros_and_ones(300, 1000), zeros_and_ones(20, 100))
    result = uplift(frame, value_per_outcome=250.0, cost_per_action=8.0)
    low, high = result.uplift_interval or (math.nan, math.nan)
    assert result.value_per_decision == pytest.approx((result.uplift or 0) * 250.0 - 8.0)
    assert result.value_per_decision_interval == pytest.approx((low * 250 - 8, high * 250 - 8))
    # When a unit of outcome costs money, the interval's ends swap.
    costly = uplift(frame, value_per_outcome=-10.0)
    assert costly.value_per_decision_interval == pytest.approx((high * -10, low * -10))


def test_number_needed_to_treat_is_one_over_a_positive_uplift_only() -> None:
    helped = uplift(arms_frame(zeros_and_ones(450, 1000), zeros_and_ones(20, 100)))
    low, high = helped.uplift_interval or (math.nan, math.nan)
    assert low > 0
    assert helped.number_needed_to_treat == pytest.approx(1 / (0.45 - 0.2))
    assert helped.number_needed_to_treat_interval == pytest.approx((1 / high, 1 / low))
    # An interval reaching zero gives no finite bound on the number needed to treat.
    unsure = uplift(arms_frame(zeros_and_ones(400, 1000), zeros_and_ones(35, 100)))
    assert unsure.number_needed_to_treat == pytest.approx(1 / (0.4 - 0.35))
    assert unsure.number_needed_to_treat_interval is None
    harmed = uplift(arms_frame(zeros_and_ones(200, 1000), zeros_and_ones(30, 100)))
    assert harmed.number_needed_to_treat is None


def test_too_few_held_out_rows_say_not_enough_data_and_give_the_counts() -> None:
    result = uplift(arms_frame(zeros_and_ones(150, 500), zeros_and_ones(5, 12)))
    assert not result.enough_data
    assert result.uplift is None and result.p_value is None and result.significant is None
    assert result.reason is not None and "500 actioned and 12 held out" in result.reason
    assert "at least 30" in result.reason
    assert result.control_mean == pytest.approx(5 / 12)
    assert "not enough data" in result.summary()
    assert uplift(arms_frame(zeros_and_ones(150, 500), zeros_and_ones(5, 12)), minimum_per_arm=12)


def test_to_dict_is_json_safe_and_flattens_intervals() -> None:
    for frame in (
        arms_frame(zeros_and_ones(300, 1000), zeros_and_ones(20, 100)),
        arms_frame(zeros_and_ones(3, 10), zeros_and_ones(0, 5)),
    ):
        result = uplift(frame, value_per_outcome=100.0)
        flat = result.to_dict()
        assert json.loads(json.dumps(flat, allow_nan=False)) == flat
        interval = result.uplift_interval
        assert (flat["uplift_low"], flat["uplift_high"]) == (interval or (None, None))
        assert flat["summary"] == result.summary()


def test_summary_reads_the_uplift_in_points_with_interval_p_and_counts() -> None:
    result = uplift(arms_frame(zeros_and_ones(980, 1204), zeros_and_ones(90, 131)))
    low, high = result.uplift_interval or (math.nan, math.nan)
    line = result.summary("contacting customers", "retention")
    verb = "raised" if low > 0 else "lowered" if high < 0 else "did not measurably change"
    assert line.startswith(f"contacting customers {verb} retention")
    assert f"{abs(result.uplift or 0) * 100:.1f} points" in line
    assert f"(95% CI {low * 100:.1f} to {high * 100:.1f}, " in line
    p_value = result.p_value or 0.0
    # p is shown as p<0.001, else to 3 decimals below 0.01, else to 2.
    p_text = "p<0.001" if p_value < 0.001 else f"p={p_value:.{3 if p_value < 0.01 else 2}f}"
    assert f"{p_text}; 1,204 actioned vs 131 held out)" in line


@pytest.mark.parametrize(("treated_successes", "verb"), [(700, "raised"), (300, "lowered")])
def test_summary_says_raised_or_lowered_when_the_interval_excludes_zero(
    treated_successes: int, verb: str
) -> None:
    result = uplift(arms_frame(zeros_and_ones(treated_successes, 1000), zeros_and_ones(50, 100)))
    assert result.significant
    low, high = sorted(abs(bound) * 100 for bound in result.uplift_interval or ())
    line = result.summary()
    assert line.startswith(f"action 'contact' {verb} value by")
    assert f"95% CI {low:.1f} to {high:.1f}" in line


def test_summary_says_no_measurable_change_when_the_interval_spans_zero() -> None:
    result = uplift(arms_frame(zeros_and_ones(510, 1000), zeros_and_ones(50, 100)))
    assert result.significant is False
    assert "did not measurably change value: +1.0 points" in result.summary()


@pytest.mark.parametrize(("worth", "cost"), [(100.0, 2.0), (300.0, 4.0), (2.5, 0.1)])
def test_summary_names_the_value_per_decision_to_the_places_it_shows(
    worth: float, cost: float
) -> None:
    result = uplift(
        arms_frame(zeros_and_ones(700, 1000), zeros_and_ones(50, 100)),
        value_per_outcome=worth,
        cost_per_action=cost,
    )
    number = r"(-?[\d,]+(?:\.(\d+))?)"
    found = re.search(
        rf"worth {number} per decision \(95% CI {number} to {number}\)", result.summary()
    )
    assert found is not None
    assert result.value_per_decision is not None and result.value_per_decision_interval
    truths = (result.value_per_decision, *result.value_per_decision_interval)
    for shown, places, truth in zip(found.groups()[::2], found.groups()[1::2], truths, strict=True):
        assert abs(float(shown.replace(",", "")) - truth) <= 0.5 * 10 ** -len(places or "")


def test_summary_never_shows_minus_zero() -> None:
    # 0.3 points of uplift at 250 per point, less 1.0: -0.25, which rounds to whole units.
    result = uplift(
        arms_frame(zeros_and_ones(503, 1000), zeros_and_ones(50, 100)),
        value_per_outcome=250.0,
        cost_per_action=1.0,
    )
    assert result.value_per_decision == pytest.approx(0.003 * 250 - 1)
    assert "worth 0 per decision" in result.summary()


# --- segments and windows ---------------------------------------------------------------------------


def segmented_frame(seed: int) -> pd.DataFrame:
    generator = np.random.default_rng(seed)
    n_rows = 6_000
    region = generator.choice(["north", "south", "east"], size=n_rows)
    tenure = generator.gamma(2.0, 12.0, size=n_rows)
    holdout = generator.random(n_rows) < 0.25
    effect = np.where(region == "north", 0.12, 0.0)
    stay = generator.random(n_rows) < 0.5 + effect * ~holdout
    return pd.DataFrame(
        {
            "intended_action": generator.choice(["contact", "none"], size=n_rows, p=[0.8, 0.2]),
            "holdout": holdout,
            "value": stay.astype(float),
            "region": region,
            "tenure": tenure,
        }
    )


def test_each_segment_row_equals_uplift_on_that_segments_rows() -> None:
    frame = segmented_frame(7)
    table = uplift_by_segment(frame, "region")
    assert table["region"].tolist() == ["east", "north", "south"]
    for row in table.to_dict("records"):
        alone = uplift(frame[frame["region"] == row["region"]]).to_dict()
        for key, value in alone.items():
            if key == "summary":
                continue
            if value is None:  # the table holds NaN or None where the result holds None
                assert pd.isna(row[key]), key
            else:
                assert row[key] == pytest.approx(value), key


def test_segment_p_values_are_adjusted_with_benjamini_hochberg() -> None:
    table = uplift_by_segment(segmented_frame(8), ["region", "tenure"], bins=3)
    tested = table[table["enough_data"]]
    p_values = tested["p_value"].to_numpy()
    # Benjamini–Hochberg written out: sort, scale by m / rank, take the running minimum from the top.
    order = np.argsort(p_values)
    scaled = p_values[order] * len(p_values) / np.arange(1, len(p_values) + 1)
    adjusted = np.empty_like(p_values)
    adjusted[order] = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    assert tested["p_value_adjusted"].to_numpy() == pytest.approx(adjusted)
    assert f"{len(tested)} of {len(table)} segments" in table.attrs["note"]


def test_numeric_segment_columns_are_cut_at_their_quantiles() -> None:
    frame = segmented_frame(9)
    table = uplift_by_segment(frame, "tenure", bins=4)
    contact = frame[frame["intended_action"] == "contact"]
    edges = np.quantile(contact["tenure"], [0, 0.25, 0.5, 0.75, 1])
    assert table["tenure"].tolist() == [
        f"{low:.4g} to {high:.4g}" for low, high in itertools.pairwise(edges)
    ]
    sizes = table["n_treated"] + table["n_control"]
    assert int(sizes.sum()) == len(contact)
    assert sizes.max() - sizes.min() <= 1


def test_small_segments_have_no_p_value_and_stay_out_of_the_adjustment() -> None:
    frame = segmented_frame(10)
    frame.loc[frame.index[:40], "region"] = "islands"
    table = uplift_by_segment(frame, "region").set_index("region")
    assert not table.loc["islands", "enough_data"]
    assert np.isnan(table.loc["islands", "p_value_adjusted"])
    assert "3 of 4 segments" in table.attrs["note"]


def test_each_window_row_equals_uplift_on_that_windows_rows() -> None:
    frame = segmented_frame(11)
    generator = np.random.default_rng(11)
    start = pd.Timestamp("2026-03-02", tz="UTC")
    days = generator.integers(0, 28, size=len(frame))
    days[days >= 14] += 7  # the third week has no decisions at all
    frame["event_time"] = start + pd.to_timedelta(days, unit="D")
    table = uplift_over_time(frame, freq="7D")
    assert table["window_start"].tolist() == [start + pd.Timedelta(days=7 * i) for i in range(5)]
    for row in table.to_dict("records"):
        inside = frame[
            (frame["event_time"] >= row["window_start"]) & (frame["event_time"] < row["window_end"])
        ]
        if inside.empty:
            assert not row["enough_data"] and row["n_treated"] == row["n_control"] == 0
            continue
        assert row["uplift"] == pytest.approx(uplift(inside).uplift)
        assert row["n_treated"] == uplift(inside).n_treated


# --- sizing the holdout -----------------------------------------------------------------------------


def test_sample_size_with_an_even_split_matches_the_textbook_formula() -> None:
    # Equal arms: n = (z_a sqrt(2 p̄ q̄) + z_b sqrt(p1 q1 + p2 q2))² / Δ² per arm.
    for baseline, lift in ((0.2, 0.05), (0.05, 0.02), (0.5, -0.1)):
        treated = baseline + lift
        pooled = (baseline + treated) / 2
        root = Z95 * math.sqrt(2 * pooled * (1 - pooled)) + stats.norm.ppf(0.8) * math.sqrt(
            baseline * (1 - baseline) + treated * (1 - treated)
        )
        expected = math.ceil(root**2 / lift**2)
        assert sample_size_for_uplift(baseline, lift, holdout_fraction=0.5) == expected


@pytest.mark.parametrize("holdout_fraction", [0.05, 0.1, 0.2, 0.5])
def test_sample_size_is_the_smallest_treated_arm_that_reaches_the_power(
    holdout_fraction: float,
) -> None:
    baseline, lift, alpha, power = 0.2, 0.03, 0.05, 0.8

    def achieved_power(n_treated: int) -> float:
        n_control = n_treated * holdout_fraction / (1 - holdout_fraction)
        treated = baseline + lift
        pooled = (n_treated * treated + n_control * baseline) / (n_treated + n_control)
        null_error = math.sqrt(pooled * (1 - pooled) * (1 / n_treated + 1 / n_control))
        error = math.sqrt(
            treated * (1 - treated) / n_treated + baseline * (1 - baseline) / n_control
        )
        return float(stats.norm.cdf((abs(lift) - stats.norm.isf(alpha / 2) * null_error) / error))

    needed = sample_size_for_uplift(baseline, lift, holdout_fraction, alpha, power)
    assert achieved_power(needed) >= power > achieved_power(needed - 1)


def test_a_holdout_sized_by_sample_size_detects_the_uplift_at_the_promised_rate() -> None:
    baseline, lift, holdout_fraction, reps = 0.3, 0.1, 0.4, 300
    n_treated = sample_size_for_uplift(baseline, lift, holdout_fraction)
    n_control = round(n_treated * holdout_fraction / (1 - holdout_fraction))
    generator = np.random.default_rng(99)
    detected = 0
    for _ in range(reps):
        treated = (generator.random(n_treated) < baseline + lift).astype(float)
        control = (generator.random(n_control) < baseline).astype(float)
        detected += (uplift(arms_frame(treated, control)).p_value or 1.0) < 0.05
    lowest, highest = binomial_acceptance(reps, 0.8)
    assert lowest <= detected <= highest


# --- errors -----------------------------------------------------------------------------------------


def test_a_missing_column_is_named() -> None:
    frame = arms_frame(zeros_and_ones(5, 10), zeros_and_ones(5, 10)).drop(columns="holdout")
    with pytest.raises(InvalidInputError, match="needs column 'holdout'"):
        uplift(frame)
    with pytest.raises(InvalidInputError, match="needs column 'retained'"):
        uplift(arms_frame(zeros_and_ones(5, 10), zeros_and_ones(5, 10)), outcome="retained")
    with pytest.raises(InvalidInputError, match="needs column 'plan'"):
        uplift_by_segment(arms_frame(zeros_and_ones(5, 10), zeros_and_ones(5, 10)), "plan")


def test_no_holdout_rows_says_to_set_the_policys_holdout() -> None:
    frame = arms_frame(zeros_and_ones(50, 100), np.array([]))
    with pytest.raises(InvalidInputError, match=r"set `holdout:` .* under `policy:`"):
        uplift(frame)


def test_an_action_never_intended_lists_the_intended_actions() -> None:
    with pytest.raises(InvalidInputError, match=r"intended_action 'call'.*\['contact'\]"):
        uplift(arms_frame(zeros_and_ones(5, 10), zeros_and_ones(5, 10)), action="call")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"value": ["yes", "no"] * 10}, "must be numeric"),
        ({"value": [np.inf, 1.0] * 10}, "infinite"),
        ({"holdout": [True, None] * 10}, "'holdout' has 10 missing"),
        ({"holdout": ["yes", "no"] * 10}, "must hold true/false"),
    ],
)
def test_malformed_columns_are_rejected_with_the_column_named(
    change: dict[str, list[object]], message: str
) -> None:
    frame = arms_frame(zeros_and_ones(5, 10), zeros_and_ones(5, 10))
    for column, values in change.items():
        frame[column] = pd.Series(values)
    with pytest.raises(InvalidInputError, match=message):
        uplift(frame)


def test_integer_holdout_flags_are_read_as_booleans() -> None:
    frame = arms_frame(zeros_and_ones(20, 40), zeros_and_ones(10, 40))
    as_integers = frame.assign(holdout=frame["holdout"].astype(int))
    assert uplift(as_integers) == uplift(frame)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"confidence": 1.0}, "confidence must be in"),
        ({"cost_per_action": 3.0}, "needs value_per_outcome"),
        ({"minimum_per_arm": 1}, "minimum_per_arm must be"),
        ({"outcome_type": "ordinal"}, "outcome_type='ordinal' is unknown"),
        ({"outcome_type": "binary", "outcome": "amount"}, "values other than 0 and 1"),
        ({"value_per_outcome": math.nan}, "value_per_outcome must be a finite number"),
    ],
)
def test_bad_settings_are_rejected_with_the_value_named(
    arguments: dict[str, object], message: str
) -> None:
    frame = arms_frame(zeros_and_ones(20, 40), zeros_and_ones(10, 40)).assign(amount=2.5)
    with pytest.raises(InvalidInputError, match=message):
        uplift(frame, **arguments)  # type: ignore[arg-type]


def test_windows_need_timestamps_and_a_valid_frequency() -> None:
    frame = arms_frame(zeros_and_ones(20, 40), zeros_and_ones(10, 40))
    with pytest.raises(InvalidInputError, match="must hold timestamps"):
        uplift_over_time(frame.assign(event_time="2026-03-02"))
    timed = frame.assign(event_time=pd.Timestamp("2026-03-02", tz="UTC"))
    with pytest.raises(InvalidInputError, match="not a pandas frequency"):
        uplift_over_time(timed, freq="fortnightly")


@pytest.mark.parametrize(
    "arguments",
    [
        (0.0, 0.05, 0.1),
        (0.2, 0.0, 0.1),
        (0.2, 0.9, 0.1),
        (0.2, 0.05, 1.0),
        (0.2, 0.05, 0.1, 0.05, 1.0),
    ],
)
def test_impossible_sizing_questions_are_rejected(arguments: tuple[float, ...]) -> None:
    with pytest.raises(InvalidInputError):
        sample_size_for_uplift(*arguments)


@pytest.mark.parametrize("counts", [(11, 10, 1, 10), (1, 0, 1, 10), (1.5, 10, 1, 10)])
def test_impossible_counts_are_rejected(counts: tuple[int, int, int, int]) -> None:
    with pytest.raises(InvalidInputError):
        newcombe_interval(*counts)


def test_all_names_every_public_member() -> None:
    public = {
        name
        for name, member in vars(uplift_module).items()
        if not name.startswith("_")
        and getattr(member, "__module__", "steward.monitoring.uplift")
        == "steward.monitoring.uplift"
        and (callable(member) or name.isupper())
        and name not in {"annotations", "OutcomeType", "Interval"}
    }
    assert public == set(uplift_module.__all__)
    assert UpliftResult.__name__ in uplift_module.__all__
