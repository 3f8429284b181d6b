"""The cheap verdict of a clean run (``evaluate._clean``, ``_judged``) against the whole
evaluation: for any run, skipping the calls that cannot make a finding (and the whole
evaluation of a run found clean) gives the very findings the full pass gives.

The subject is the private fast path itself, so the test names it: the full pass is
the same function with the fast path switched off."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from contextlib import contextmanager

from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.guard.conftest import call, log_of, open_call, record
from wasmscope.guard import evaluate as ev
from wasmscope.guard.policy import Policy, parse_policy
from wasmscope.runtime.host_calls import HostCall
from wasmscope.runtime.options import RunOptions

POLICIES = [
    "",  # nothing granted
    '[environment]\nallow = ["*"]\n',
    '[environment]\nallow = ["LANG"]\n[budgets]\nhost_calls = 6\noutput_bytes = 40\n',
    '[filesystem]\ndirs = ["/data:ro"]\n[clocks]\nallow = ["monotonic"]\nmax_calls = 2\n'
    '[random]\nmax_bytes = 8\n[exit]\ncodes = [0, 3]\n[arguments]\nallow = ["-v"]\n',
]


@contextmanager
def full_pass() -> Iterator[None]:
    clean, judged = ev._clean, ev._judged
    ev._clean = lambda *a: False
    ev._judged = lambda log: None
    try:
        yield
    finally:
        ev._clean, ev._judged = clean, judged


def calls() -> st.SearchStrategy[HostCall]:
    fd = st.sampled_from([0, 1, 2, 3, 4, 7])
    flags = st.fixed_dictionaries({}, optional={"denied": st.booleans(), "over_budget": st.booleans()})
    return st.one_of(
        st.builds(lambda f, n, k: call("fd_write", fd=f, iovs=0, iovs_len=1, nwritten=0, nbytes=n, result=n, **k),
                  fd, st.integers(0, 30), flags),
        st.builds(lambda: call("environ_get", environ=0, environ_buf=0)),
        st.builds(lambda: call("environ_sizes_get", environc=0, environ_buf_size=0)),
        st.builds(lambda f: call("fd_fdstat_get", fd=f, stat=0), fd),
        st.builds(lambda f: call("fd_close", fd=f), fd),
        st.builds(lambda c: call("clock_time_get", id=c, precision=0, time=0), st.integers(0, 1)),
        st.builds(lambda n: call("random_get", buf=0, buf_len=n, nbytes=n), st.integers(0, 16)),
        st.builds(lambda p, w, r: open_call(p, write=w, result=r), st.sampled_from(["a.txt", "../x", "/etc/passwd"]),
              st.booleans(), st.sampled_from([4, 5, 7])),
        st.builds(lambda c: call("proc_exit", errno=None, rval=c), st.sampled_from([0, 3, 7])),
    )  # fmt: skip


def policies() -> list[Policy]:
    return [parse_policy(tomllib.loads(text), f"p{i}.toml") for i, text in enumerate(POLICIES)]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(calls(), max_size=8),
    st.sampled_from([{}, {"LANG": "C"}, {"LANG": "C", "SECRET": "hunter2"}]),
    st.sampled_from([[], ["-v"], ["--other"]]),
    st.sampled_from([None, 0, 3]),
    st.integers(0, 3),
    st.sampled_from([(), ("/tmp::/data:ro",), ("/tmp::/data", "/tmp::/out")]),
)
# The runs a fast path gets wrong first: a write through a preopen's descriptor, an open.
@example([call("fd_write", fd=3, iovs=0, iovs_len=1, nwritten=0, nbytes=3, result=3)], {}, [], None, 0, ("/tmp::/data:ro",))
@example([call("fd_write", fd=1, iovs=0, iovs_len=1, nwritten=0, nbytes=3, result=3)], {}, [], None, 0, ("/tmp::/data",))
@example([open_call("a.txt", write=True, result=4), call("fd_write", fd=4, nbytes=1, result=1)], {}, [], 0, 0, ())
def test_the_fast_path_finds_what_the_full_pass_finds(
    made: list[HostCall], env: dict[str, str], args: list[str], exit_code: int | None, dropped: int,
    dirs: tuple[str, ...],
) -> None:  # fmt: skip
    log = log_of(*made)
    log.dropped = dropped if dropped == 1 else 0
    log.totals = {
        "host_calls": len(made),
        "output_bytes": sum(c.result or 0 for c in made if c.func == "fd_write" and c.args.get("fd") in (1, 2)),
        "random_bytes": sum(c.nbytes or 0 for c in made if c.func == "random_get"),
        "open_fds_peak": sum(1 for c in made if c.func == "path_open"),
    }
    rec = record(args=args, exit_code=exit_code, stdout=b"hunter2 here" if env.get("SECRET") else b"hi")
    options = RunOptions(env=env, dirs=dirs)
    for policy in policies():
        fast = ev.evaluate(policy, rec, log, options)
        with full_pass():
            full = ev.evaluate(policy, rec, log, options)
        assert fast == full, (policy.source, made)


def test_a_clean_run_skips_the_evaluation() -> None:
    """What serve's requests mostly are: environment, stdout, exit 0 under a policy
    that allows them is clean without building the evaluation."""
    policy = policies()[1]
    log = log_of(call("environ_sizes_get", environc=0, environ_buf_size=0), call("fd_write", fd=1, nbytes=3, result=3))
    log.totals = {"host_calls": 2, "output_bytes": 3, "random_bytes": 0, "open_fds_peak": 0}
    assert ev._clean(policy, record(), log, RunOptions(env={"A": "b"}))
    assert ev.evaluate(policy, record(), log, RunOptions(env={"A": "b"})) == []
    log.calls[1] = call("fd_write", fd=5, nbytes=3, result=3)  # no file behind fd 5 without preopens
    assert ev._clean(policy, record(), log, RunOptions(env={"A": "b"}))
    # with a preopen, a write to a descriptor is looked at (fd 3 is the preopen itself)
    assert not ev._clean(policy, record(), log, RunOptions(env={"A": "b"}, dirs=["/tmp::/data"]))

