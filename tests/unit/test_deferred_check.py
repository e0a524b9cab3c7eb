"""The check every test runs under (tests/deferred_check.py, wired in tests/conftest.py): a
Deferred whose error nobody handled fails the test, even though each collection only walks
what the test made."""

from __future__ import annotations

from pathlib import Path

import deferred_check
import pytest
from deferred_check import UnhandledDeferredErrors
from twisted.internet.defer import Deferred, fail

pytest_plugins = ["pytester"]


def failed_in_a_cycle(message: str) -> Deferred[None]:
    """A failed Deferred nobody handles, in a reference cycle (its failure's traceback holds
    this frame, which holds the Deferred): once dropped, only the garbage collector finds it."""
    d: Deferred[None] = Deferred()
    try:
        raise ValueError(message)
    except ValueError:
        d.errback()
    return d


def leak_in_a_cycle(message: str) -> None:
    failed_in_a_cycle(message)


def test_a_leaked_failure_in_a_cycle_fails_the_test() -> None:
    deferred_check.collect()  # what exists now is frozen: the leak below is all that is new
    with pytest.raises(pytest.fail.Exception) as raised, UnhandledDeferredErrors():
        leak_in_a_cycle("leaked in a cycle")
    assert "unhandled error in a Deferred" in str(raised.value)
    assert "ValueError: leaked in a cycle" in str(raised.value)


def test_a_leaked_failure_without_a_cycle_fails_the_test() -> None:
    with pytest.raises(pytest.fail.Exception) as raised, UnhandledDeferredErrors():
        fail(KeyError("dropped at once"))
    assert "KeyError: 'dropped at once'" in str(raised.value)


def test_garbage_frozen_earlier_is_caught_by_the_periodic_full_collection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A failed Deferred still referenced at one collection is frozen with the survivors; when it
    is dropped later, the next full collection (every FULL_EVERY checks) finds it."""
    kept = [failed_in_a_cycle("frozen, then dropped")]
    deferred_check.collect()
    kept.clear()
    monkeypatch.setattr(deferred_check, "_checks", deferred_check.FULL_EVERY - 1)
    match = "frozen, then dropped"
    with pytest.raises(pytest.fail.Exception, match=match), UnhandledDeferredErrors():
        pass


def test_handled_failures_pass() -> None:
    with UnhandledDeferredErrors() as check:
        d: Deferred[None] = Deferred()
        try:
            raise ValueError("handled")
        except ValueError:
            d.errback()
        d.addErrback(lambda failure: None)
    assert check.errors == []


def test_the_fixture_fails_a_test_that_leaks(pytester: pytest.Pytester) -> None:
    """The real tests/conftest.py, in a pytest run of its own: the leaking test errors at
    teardown, the one beside it passes."""
    pytester.makeconftest((Path(__file__).parents[1] / "conftest.py").read_text())
    pytester.makepyfile(
        test_leak="""
        from twisted.internet.defer import Deferred

        def test_leaks():
            d = Deferred()
            try:
                raise ValueError("nobody handles this")
            except ValueError:
                d.errback()

        def test_clean():
            assert True
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:twisted", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*unhandled error in a Deferred*", "*nobody handles this*"])
