"""mutmut's run of given mutants, in the order given, until a wall-clock deadline.

    python scripts/_mutate_driver.py DEADLINE TESTS_JSON MAX_CHILDREN NAME...

Run by scripts/_mutate.py (``./scripts/mutate --changed``), never by hand. DEADLINE
is a Unix time: no mutant is started after it, and the caller kills this process
group soon after it, so a slow machine tests fewer mutants instead of overrunning. The
mutants are tried in the order given (scripts/_mutate.py's hash order), not in
mutmut's own fastest-first order, so that which ones go first is the same on every
machine. Each verdict is saved as it comes (mutants/*.meta); a mutant still running
at the deadline stays "not checked".

TESTS_JSON narrows mutmut's test selection (a JSON list of test modules). The steps
before the mutants are mutmut's own ``_run``'s: the first run that records which
test reaches which function, the clean run of those tests (a test that fails
without a mutation would "kill" every mutant; skipped when the first run was this
one's own: it ran them all, and stops on a failure), the forced failure.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import time
from math import ceil
from pathlib import Path


def log(message: str) -> None:
    print(f"mutate: {message}", flush=True)


def main(argv: list[str]) -> int:
    deadline = float(argv[0])
    tests_selection = json.loads(argv[1])
    max_children = int(argv[2])
    names = argv[3:]

    from mutmut.__main__ import (
        _register_mutant_result,
        collect_or_load_stats,
        collect_source_file_mutation_data,
        create_mutants,
        run_forced_fail_test,
        tests_for_mutant_names,
    )
    from mutmut.configuration import config
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.mutation.trampoline import set_mutant_under_test
    from mutmut.state import state
    from mutmut.utils.file_utils import setup_source_paths
    from mutmut.utils.format_utils import mangled_name_from_mutant_name as mangled
    from mutmut.workers.isolation import get_mutant_runner

    config().pytest_add_cli_args_test_selection = tests_selection
    setup_source_paths()  # as mutmut's run: the mutants/ copy first on sys.path
    # The mutants are made (scripts/_mutate.py did); this reads their functions' hashes,
    # without which mutmut takes a record of an earlier run for stale and drops it.
    with contextlib.redirect_stdout(io.StringIO()):
        create_mutants(max_children)
    runner = get_mutant_runner(max_children)
    started = time.monotonic()
    fresh = not Path("mutants", "mutmut-stats.json").exists()
    collect_or_load_stats(runner, apply_config_invalidation=True)
    log(f"which test reaches which function: recorded in {int(time.monotonic() - started)} s")

    wanted = set(names)
    data_by_name = {
        name: data
        for data, name, _result in collect_source_file_mutation_data(mutant_names=names)[0]
        if name in wanted
    }
    set_mutant_under_test("")
    started = time.monotonic()
    # A test that fails without a mutation would "kill" every mutant. The recording
    # run above is such a run of every test selected (mutmut stops on its failure), so
    # the clean run is needed only where an earlier run's record was reused.
    if not fresh and runner.run_clean_tests(tests=tests_for_mutant_names(names)) != 0:
        log("the tests fail without a mutation: fix them first (a failing test kills every mutant)")
        return 1
    run_forced_fail_test(runner)
    took = int(time.monotonic() - started)
    log(f"the tests pass without a mutation and fail when forced to: {took} s")

    def tests_of(name: str) -> set[str]:
        found: set[str] = state().tests_by_mangled_function_name.get(mangled(name), set())
        return found

    def estimate(name: str) -> float:
        return sum(state().duration_by_test[test] for test in tests_of(name))

    submitted: dict[str, SourceFileMutationData] = {}
    done = 0
    runner.startup()
    try:
        for position, name in enumerate(names):
            data = data_by_name[name]
            tests = tests_of(name)
            if not tests:
                data.exit_code_by_key[name] = 33  # mutmut's "no tests"
                data.save()
                done += 1
                continue
            while not runner.has_capacity():
                _register_mutant_result(runner.wait_for_result(), submitted)
                done += 1
            if time.time() >= deadline:
                log(f"deadline: {len(names) - position} of {len(names)} mutants left untested")
                break
            worst = estimate(name)
            cfg = config()
            cpu_limit = ceil((worst + cfg.timeout_constant) * cfg.timeout_multiplier * 2)
            submitted[name] = data
            runner.submit(name, sorted(tests), cpu_limit, worst)
            if position % 10 == 0:
                log(f"{done}/{len(names)} mutants tested, {int(deadline - time.time())} s left")
        while runner.pending_count() > 0:
            _register_mutant_result(runner.wait_for_result(), submitted)
            done += 1
    finally:
        runner.stop_all_workers()
        runner.shutdown()
    log(f"{done}/{len(names)} mutants tested")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
