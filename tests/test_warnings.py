"""s2l8h's warnings: one base class, given by ``s2l8h.errors.warn`` and kept by
``collect_warnings`` (what ``harmonize`` returns in ``extra["warnings"]`` and
``harmonize-many`` writes to its manifest); the errors travel between processes intact."""

from __future__ import annotations

import pickle
import threading
import warnings
from pathlib import Path

import pytest

from conftest import Scene, stale_workdir
from s2l8h import errors, harmonize
from s2l8h.errors import InputError, S2L8HWarning, collect_warnings, warn
from s2l8h.inference.checks import InputCheckWarning
from s2l8h.io.cog import StaleTemporaryWarning
from s2l8h.io.landsat import ToaModeWarning
from s2l8h.io.reader import ReaderClosedError


def _give(message: str) -> None:
    warn(message, S2L8HWarning, stacklevel=2)  # points at _give's caller


def test_messages_are_kept_in_order_by_every_collector_around_them() -> None:
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        with collect_warnings() as outer:
            _give("first")
            with collect_warnings() as inner:
                _give("second")
            _give("third")
        _give("outside")
    assert outer == ["first", "second", "third"]
    assert inner == ["second"]
    assert [str(w.message) for w in shown] == ["first", "second", "third", "outside"]
    assert {w.filename for w in shown} == {__file__}  # the caller's caller, as asked


def test_messages_are_kept_when_the_filters_hide_them() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with collect_warnings() as kept:
            _give("hidden")
            _give("hidden")
    assert kept == ["hidden", "hidden"]


def test_each_thread_keeps_only_its_own_messages() -> None:
    """A dask worker with several threads runs several scenes at once: each task's collector
    must hold that task's messages only."""
    barrier = threading.Barrier(2)
    kept: dict[str, list[str]] = {}

    def task(name: str) -> None:
        with collect_warnings() as mine:
            barrier.wait()  # both collectors are open now
            for index in range(50):
                _give(f"{name} {index}")
            barrier.wait()
        kept[name] = mine

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        threads = [threading.Thread(target=task, args=(name,)) for name in ("a", "b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with collect_warnings() as here:
            thread = threading.Thread(target=_give, args=("from another thread",))
            thread.start()
            thread.join()
    assert kept["a"] == [f"a {index}" for index in range(50)]
    assert kept["b"] == [f"b {index}" for index in range(50)]
    assert here == []


def test_harmonizes_reading_and_writing_threads_keep_to_the_run_collector() -> None:
    """The strip reader's prefetch thread and the background writer run in a copy of the
    caller's context, so what they warn is kept for the run (``extra["warnings"]``)."""
    from s2l8h.inference.tiling import BackgroundEmitter, _prefetched

    def read(row: int, *_: int) -> int:
        _give(f"read {row} in {threading.current_thread().name}")
        return row

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with collect_warnings() as kept:
            assert list(_prefetched(read, [(row, 0, 0, 0) for row in range(3)], True)) == \
                [0, 1, 2]
            with BackgroundEmitter(lambda row: _give(
                    f"write {row} in {threading.current_thread().name}")) as emitter:
                for row in range(2):
                    emitter.submit(row)
    assert kept == [*(f"read {row} in s2l8h-read_0" for row in range(3)),
                    *(f"write {row} in s2l8h-write" for row in range(2))]


def test_the_projects_warnings_share_one_base() -> None:
    for category in (InputCheckWarning, ToaModeWarning, StaleTemporaryWarning):
        assert issubclass(category, S2L8HWarning) and issubclass(category, UserWarning)


def _errors() -> list[BaseException]:
    """One of each of the project's error classes, as raised."""
    made: list[BaseException] = [InputError("/scenes/LC08/LC08_B4.TIF", "truncated"),
                                 InputError(None, "no path"),
                                 ReaderClosedError("/scenes/LC08", "closed")]
    for name in errors.__all__:
        kind = getattr(errors, name)
        if isinstance(kind, type) and issubclass(kind, errors.S2L8HError) and \
                kind is not InputError:
            made.append(kind(f"{name}: something"))
    return made


@pytest.mark.parametrize("error", _errors(), ids=lambda error: type(error).__name__)
def test_errors_travel_back_from_a_dask_worker_with_what_they_carry(error) -> None:
    """dask sends a failed task's exception back to the client pickled, with the warnings
    ``harmonize-many`` sets on it (``distributed.core.error_message`` sends
    ``Exception(repr(error))`` instead of an error that does not unpickle as it was)."""
    from distributed.core import error_message
    from distributed.protocol import pickle as dask_pickle

    error.s2l8h_warnings = ["a warning"]
    for again in (pickle.loads(pickle.dumps(error)),
                  dask_pickle.loads(error_message(error)["exception"].data)):
        assert type(again) is type(error) and str(again) == str(error)
        assert again.s2l8h_warnings == ["a warning"]
        if isinstance(error, InputError):
            assert (again.path, again.problem) == (error.path, error.problem)


def test_harmonize_returns_the_stale_folder_warnings_it_gave(scene: Scene, tmp_path: Path,
                                                             tiny_release: Path) -> None:
    outdir = tmp_path / "o"
    stale, pid = stale_workdir(outdir)
    with pytest.warns(StaleTemporaryWarning) as shown:
        result = harmonize(scene.folder, outdir / "out.tif", models=[str(tiny_release)],
                           progress=False)
    stale_messages = [str(w.message) for w in shown if w.category is StaleTemporaryWarning]
    assert stale_messages == [f"removed {stale}: temporary folder left by an interrupted "
                              f"s2l8h run (process {pid})"]
    assert [m for m in result.extra["warnings"] if m.startswith("removed ")] == stale_messages
    assert not stale.exists()


def test_the_clis_warnings_are_shown_when_the_command_fails(
        capsys: pytest.CaptureFixture[str]) -> None:
    """What a command warned about before it failed still reaches the user (harmonize,
    harmonize-many and the others run inside ShownWarnings), once, then the error."""
    from s2l8h.cli.harmonize import ShownWarnings

    shown = ShownWarnings()
    with pytest.raises(InputError), shown:
        _give("the pan is shifted")
        _give("the pan is shifted")
        raise InputError("scene", "no valid pixel")
    assert capsys.readouterr().err.count("warning: the pan is shifted") == 1
    with shown:  # entered again: what it showed is not shown twice
        _give("the pan is shifted")
        _give("noisy input")
    err = capsys.readouterr().err
    assert "the pan is shifted" not in err and "warning: noisy input" in err
