"""convbench's pytest plug-in: run options, backend fixtures and readable verification failures.

Installed with convbench (entry point ``pytest11``), or loaded with ``pytest -p harness.pytest_plugin``.

Options
    ``--convbench-cases N``   random cases for ``assert_verified`` / ``cases()`` calls that do not say
    ``--convbench-seed S``    their seed (default 0); ``random`` draws one, printed so the run can be replayed
    ``--convbench-exact``     hold function backends to bit-exact results on integer fills
Fixtures
    ``convbench_backend``     registers a function for one test: ``name = convbench_backend(fn, features=...)``
    ``convbench_seed``        this run's seed

A :class:`harness.testing.VerificationFailure` is reported as its message (the cases, the worst
element, the reproducer), without the harness's own frames. This module imports nothing from
the harness until a hook needs it, so loading it costs only ``import harness`` itself.
"""

from __future__ import annotations

import random

import pytest

_SEED_KEY = "convbench_seed"  # in an xdist worker's input
_seed_key = pytest.StashKey[object]()


def pytest_addoption(parser):
    group = parser.getgroup("convbench", "convbench kernel verification")
    group.addoption("--convbench-cases", type=int, default=None, metavar="N",
                    help="random cases for harness.testing.assert_verified / cases() calls that do not say")
    group.addoption("--convbench-seed", default=None, metavar="S",
                    help="seed of those cases (default 0; 'random' draws one and prints it)")
    group.addoption("--convbench-exact", action="store_true", default=False,
                    help="hold function backends to bit-exact results on integer (exact) fills")


def _seed(config) -> int | None:
    worker = getattr(config, "workerinput", None)
    if worker is not None and _SEED_KEY in worker:  # an xdist worker: the controller's seed
        return worker[_SEED_KEY]
    text = config.getoption("--convbench-seed")
    if text is None:
        return None
    if text == "random":
        return random.SystemRandom().randrange(2**31)
    try:
        seed = int(text)
    except ValueError:
        raise pytest.UsageError(f"--convbench-seed must be a non-negative integer or 'random', got {text!r}") from None
    if seed < 0:
        raise pytest.UsageError(f"--convbench-seed must be non-negative, got {seed}")
    return seed


def pytest_configure(config):
    seed = _seed(config)
    config.stash[_seed_key] = seed
    cases = config.getoption("--convbench-cases")
    if seed is None and cases is None and not config.getoption("--convbench-exact"):
        return  # nothing to set: harness.testing keeps its defaults (and stays unimported)
    if cases is not None and cases < 0:
        raise pytest.UsageError(f"--convbench-cases must be non-negative, got {cases}")
    from harness import testing  # noqa: F811 (loaded when a test asks for it: the plug-in itself stays light)

    testing.configure(cases=cases, seed=seed, exact=config.getoption("--convbench-exact") or None)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """pytest-xdist: every worker uses the controller's seed, so all collect the same case ids."""
    node.workerinput[_SEED_KEY] = node.config.stash[_seed_key]


def pytest_report_header(config):
    seed = config.stash.get(_seed_key, None)
    seed = 0 if seed is None else seed
    cases = config.getoption("--convbench-cases")
    exact = "on" if config.getoption("--convbench-exact") else "off"
    return f"convbench: seed {seed} (replay: --convbench-seed {seed}), cases {'per call' if cases is None else cases}, " \
           f"exact {exact}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    excinfo = call.excinfo
    if report.failed and excinfo is not None and type(excinfo.value).__name__ == "VerificationFailure":
        from harness.testing import VerificationFailure

        if isinstance(excinfo.value, VerificationFailure):
            path, line, _ = item.location
            report.longrepr = f"{excinfo.value}\n\n{path}:{(line or 0) + 1}: {item.name}"
    return report


def pytest_terminal_summary(terminalreporter, config):
    failed = terminalreporter.stats.get("failed", [])
    if any("\nconvbench: " in "\n" + getattr(r, "longreprtext", "") for r in failed):
        seed = config.stash.get(_seed_key, None)
        terminalreporter.write_line(f"convbench: seed {0 if seed is None else seed}; replay with "
                                    f"--convbench-seed {0 if seed is None else seed}")


@pytest.fixture
def convbench_seed(pytestconfig) -> int:
    """This run's seed (``--convbench-seed``, default 0)."""
    seed = pytestconfig.stash.get(_seed_key, None)
    return 0 if seed is None else seed


@pytest.fixture
def convbench_backend():
    """Register functions as backends for one test; each is removed when the test ends.

    ``name = convbench_backend(fn, op="conv2d", **declaration)`` returns the registered name
    (declaration: :func:`harness.register_backend` options such as ``features``).
    """
    from contextlib import ExitStack

    from harness.testing import temporary_backend

    with ExitStack() as stack:
        def register(fn, op: str = "conv2d", **declaration) -> str:
            if not callable(fn):
                raise TypeError(f"convbench_backend registers a function, got {type(fn).__name__}")
            return stack.enter_context(temporary_backend(fn, op, **declaration))

        yield register
