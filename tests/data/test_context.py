"""Context features: time fields from timestamps, binned and coarsened attributes, unknown values, stated contexts."""

from __future__ import annotations

import pandas as pd
import pytest

from kgrec.config import ContextConfig
from kgrec.data import ContextFeatures
from kgrec.errors import InputError

# 2021-03-05 was a Friday; 21:30 UTC.
FRIDAY_2130 = 1614979800


def _log() -> pd.DataFrame:
    rows = [("u1", "a", FRIDAY_2130 + 3600 * 24 * d, "mobile") for d in range(6)]
    rows += [("u2", "b", FRIDAY_2130 + 60 * m, "web") for m in range(6)]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "device"])


def _users() -> pd.DataFrame:
    return pd.DataFrame({"user_id": ["u1", "u2"], "age": [23, 61], "zip_code": ["94043", "T8H1N"]})


def _features(**overrides) -> ContextFeatures:
    config = ContextConfig(
        **{
            "time": ("hour", "weekday", "gap", "period"),
            "user": ("age", "zip_code"),
            "columns": ("device",),
            "prefix": {"zip_code": 1},
            "bins": 2,
            "min_count": 1,
            **overrides,
        }
    )
    return ContextFeatures.fit(_log(), _users(), config)


def test_time_fields_come_from_utc_timestamps():
    features = _features()
    by_name = {f.name: f for f in features.fields}
    assert "21" in by_name["hour"].values
    assert set(by_name["weekday"].values) >= {"Fri", "Sat", "Wed"}
    assert by_name["period"].values == ("2021-03",)
    # u1's days are a day apart (2^16 s < 86400 s < 2^17 s), u2's minutes a minute apart (2^5 < 60 < 2^6).
    assert set(by_name["gap"].values) == {"first", "16", "5"}


def test_numeric_attributes_are_binned_and_prefixed_text_is_coarsened():
    features = _features()
    by_name = {f.name: f for f in features.fields}
    assert by_name["age"].edges is not None and len(by_name["age"].values) == 2
    assert by_name["zip_code"].values == ("9", "T")


def test_tokens_are_field_offsets_plus_value_and_unseen_values_are_unknown():
    features = _features()
    tokens = features.encode_log(_log(), _users())
    assert tokens.shape == (12, features.num_fields)
    assert (tokens >= features.offsets).all() and (tokens < features.num_tokens).all()
    stated = features.encode_values([{"device": "tablet", "hour": 21}])  # tablet never seen in training
    device = features.names.index("device")
    assert stated[0, device] == features.offsets[device]
    hour = features.names.index("hour")
    assert stated[0, hour] == tokens[0, hour]
    # A field left out is unknown too.
    assert stated[0, features.names.index("age")] == features.offsets[features.names.index("age")]


def test_rare_values_read_as_unknown():
    features = _features(min_count=13)  # 12 training interactions: no value is frequent enough
    assert all(len(f.values) == 0 for f in features.fields)
    assert (features.encode_log(_log(), _users()) == features.offsets).all()


def test_timestamp_fills_hour_weekday_and_period():
    features = _features()
    from_timestamp = features.encode_values([{"timestamp": "2021-03-05T21:10:00"}])
    spelled_out = features.encode_values([{"hour": "21", "weekday": "friday", "period": "2021-03"}])
    assert (from_timestamp == spelled_out).all()


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"hour": 25}, "hour='25' is not 0-23"),
        ({"weekday": "someday"}, "weekday"),
        ({"colour": "red"}, "unknown context field 'colour'"),
        ({"timestamp": "yesterday-ish"}, "timestamp"),
    ],
)
def test_bad_stated_context_is_a_clear_error(row, message):
    with pytest.raises(InputError, match=message):
        _features().encode_values([row])


def test_missing_sources_are_named():
    with pytest.raises(InputError, match="needs a user table"):
        ContextFeatures.fit(_log(), None, ContextConfig(user=("age",)))
    with pytest.raises(InputError, match="column 'income' is not in the user table"):
        ContextFeatures.fit(_log(), _users(), ContextConfig(user=("income",)))
    with pytest.raises(InputError, match="needs a timestamp"):
        ContextFeatures.fit(_log().drop(columns="timestamp"), None, ContextConfig(time=("hour",)))
    with pytest.raises(InputError, match="'browser' is not a context column"):
        ContextFeatures.fit(_log(), None, ContextConfig(columns=("browser",)))


def test_vocabulary_round_trips_and_rejects_damage():
    features = _features()
    again = ContextFeatures.from_dict(features.to_dict())
    assert (again.encode_log(_log(), _users()) == features.encode_log(_log(), _users())).all()
    with pytest.raises(InputError, match="damaged context vocabulary"):
        ContextFeatures.from_dict({"fields": [{"name": "x"}]})


def test_config_rejects_a_field_named_twice():
    with pytest.raises(ValueError, match="named twice"):
        ContextConfig(user=("age",), columns=("age",))
