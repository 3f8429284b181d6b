"""The shared filters: ranges from the query string, their SQL, their links."""

from __future__ import annotations

from wasmscope.collect.dashboard.filters import NS, Filters, parse_time, step_for

NOW = 1_790_000_000.0


def parse(**q: str) -> Filters:
    return Filters.parse({k: [v] for k, v in q.items()}, NOW)


def test_relative_ranges_and_fallbacks() -> None:
    f = parse()
    assert (f.range, f.end_ns - f.start_ns, f.end_ns) == ("1h", 3600 * NS, int(NOW) * NS)
    assert parse(range="7d").seconds == 7 * 86400
    assert parse(range="1y").range == "1h"  # unknown: the default
    assert parse(range="abs", **{"from": "garbage"}).range == "1h"


def test_absolute_ranges() -> None:
    f = parse(range="abs", **{"from": "2026-09-21T10:00:00", "to": "2026-09-21T11:30"})
    assert f.seconds == 5400 and f.start_iso == "2026-09-21T10:00:00"
    assert parse(range="abs", **{"from": "1789990000", "to": "1789980000"}).seconds == 10000  # swapped
    assert parse(range="abs", **{"from": "2026-09-21T10:00:00+02:00"}).start_iso == "2026-09-21T08:00:00"
    assert parse(range="abs", **{"from": "1"}).seconds == 400 * 86400  # capped
    assert parse_time("1e300") is None and parse_time("") is None


def test_sql_is_parameterized() -> None:
    sql, params = parse(service="x' OR 1=1 --", fn="{f_t0:Int64}").where()
    assert "x'" not in sql and "OR 1=1" not in sql
    assert params["f_service"] == "x' OR 1=1 --" and params["f_fn"] == "{f_t0:Int64}"
    sql, params = parse().where(time=False)
    assert sql == "1" and params == {}


def test_links_keep_the_state() -> None:
    f = parse(range="6h", service="edge")
    assert f.qs() == "?range=6h&service=edge"
    assert f.qs(fn="a b&c", service=None) == "?range=6h&fn=a+b%26c"
    assert parse().qs() == ""


def test_chart_steps() -> None:
    assert step_for(900) == 10 and step_for(3600) == 30 and step_for(7 * 86400) == 7200
    assert all(step_for(s) * 120 >= s for s in (1, 59, 3601, 86400 * 30, 86400 * 400))
