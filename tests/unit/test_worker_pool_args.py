"""Which Beam arguments make rpv2 fork its DirectRunner SDK workers from a warm process
(pipeline/transforms/worker_pool.py): read as Beam reads them, without importing Beam."""

import pytest

from pipeline.transforms.worker_pool import wants_forked_workers

TWO = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (TWO, True),
        (["--direct_running_mode", "multi_processing", "--direct_num_workers", "2"], True),  # separate values
        (["--direct_num_workers=0", "--direct_running_mode=multi_processing"], True),  # 0: one per core
        (["--runner=DirectRunner", *TWO], True),
        (["--runner", "direct", *TWO], True),
        ([], False),  # in-process
        (["--direct_num_workers=2"], False),  # Beam's in_memory mode: one process whatever the count
        (["--direct_running_mode=multi_processing"], False),  # one worker: nothing to gain
        (["--direct_running_mode=multi_processing", "--direct_num_workers=1"], False),
        (["--direct_running_mode=multi_threading", "--direct_num_workers=2"], False),
        (["--runner=FlinkRunner", *TWO], False),  # Flink starts its own workers
        (["--runner=PrismRunner", *TWO], False),
        ([*TWO, "--direct_running_mode=in_memory"], False),  # the last value wins, as in Beam
    ],
)
def test_forked_workers_only_for_directrunner_worker_processes(args, expected):
    assert wants_forked_workers(args) is expected
