import pytest
from caseextract.normalize import (
    expand_spinal_levels,
    normalise_figure_label,
    numbers_in,
    parse_age,
    parse_duration,
)
from caseextract.schema import Age, Intervention, Span


@pytest.mark.parametrize(
    ("raw", "value", "unit", "years"),
    [
        ("87-year-old", 87, "years", 87),
        ("An 87-year-old female patient", 87, "years", 87),
        ("3-month-old", 3, "months", 0.25),
        ("a 10-day-old neonate", 10, "days", 0.0274),
        ("six-week-old", 6, "weeks", 0.115),
        ("aged 63", 63, "years", 63),
        ("45 yrs", 45, "years", 45),
    ],
)
def test_age_points(raw, value, unit, years):
    age = parse_age(raw)
    assert (age.value, age.unit) == (value, unit)
    assert age.years == pytest.approx(years, abs=1e-3)


@pytest.mark.parametrize(
    ("raw", "low", "high"),
    [
        ("in her early 70s", 70, 73),
        ("mid-40s", 44, 46),
        ("late 60s", 67, 69),
        ("in his 50s", 50, 59),
    ],
)
def test_age_decades_are_ranges_not_points(raw, low, high):
    age = parse_age(raw)
    assert age.years is None
    assert (age.years_low, age.years_high) == (low, high)


def test_unreadable_age_is_none():
    assert parse_age("elderly") is None


@pytest.mark.parametrize(
    ("raw", "iso"),
    [
        ("2 years", "P2Y"),
        ("4 days later", "P4D"),
        ("At follow-up 2 years after leakage", "P2Y"),
        ("1 year and 6 months", "P1Y6M"),
        ("six weeks", "P6W"),
        ("1.5 years", "P1.5Y"),
        ("48 hours", "PT48H"),
        ("a 3-day history", "P3D"),
        ("half a month", "P0.5M"),
        ("recently", None),
    ],
)
def test_durations(raw, iso):
    assert parse_duration(raw) == iso


@pytest.mark.parametrize(
    ("raw", "levels"),
    [
        ("T12 to L2", ["T12", "L1", "L2"]),
        ("T12–L2", ["T12", "L1", "L2"]),
        ("from T12 to L2 level", ["T12", "L1", "L2"]),
        ("L4/5", ["L4", "L5"]),
        ("L5-S1", ["L5", "S1"]),
        ("C5-6 and C6-7", ["C5", "C6", "C7"]),
        ("T11 and L1", ["T11", "L1"]),
        ("L1", ["L1"]),
        ("D12", ["T12"]),
        ("L9", []),
        ("lumbar spine", []),
    ],
)
def test_spinal_levels(raw, levels):
    assert expand_spinal_levels(raw) == levels


def test_figure_labels():
    assert normalise_figure_label("FIG. 2a") == "Fig. 2A"
    assert normalise_figure_label("Figure 1") == "Fig. 1"
    assert normalise_figure_label("Table 1") == "Table 1"


def test_numbers_in_reads_digits_and_words():
    assert numbers_in("four days, 2.5 mg, 87-year-old") == {"4", "2.5", "87"}


def test_validators_keep_raw_and_fill_normalised():
    age = Age(raw="3-month-old", evidence=["a 3-month-old boy"])
    assert (age.raw, age.value, age.unit, age.years) == ("3-month-old", 3, "months", 0.25)
    span = Span(raw="4 days later")
    assert (span.raw, span.iso) == ("4 days later", "P4D")
    iv = Intervention(name="laminectomy", kind="surgery", levels=["T12 to L2"], evidence=["x"])
    assert iv.levels == ["T12", "L1", "L2"]
    iv = Intervention(name="fusion", kind="surgery", levels=["L4/5", "L5"], evidence=["x"])
    assert iv.levels == ["L4", "L5"]


def test_age_from_value_and_unit_when_raw_is_unparseable():
    age = Age(raw="eighty-seven", value=87, unit="year", evidence=["x"])
    assert (age.unit, age.years) == ("years", 87)
