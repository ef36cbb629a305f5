"""Bounded fuzzing of the run-config loader (issue 9, "Fuzzing"): mutated configs/default.yaml, mutated
runner profiles (configs/runners/*.yaml) and random YAML values for every key.

The contract under test (pipeline/config.py): ``load_config(path)`` and ``load_config(runner_profile=...)``
either return a RunConfig or raise :class:`ConfigError` with a one-line message; never another exception
(TypeError / KeyError / AttributeError / OverflowError / RecursionError / yaml errors escaping are
crashers). What loads must be usable: its summary form (``to_dict``) and its Beam arguments can be built.
Loading a config does not import Apache Beam, so this file is a unit test.

Crashers found by these fuzzers are pinned as named regression tests at the end of this file.
"""

from __future__ import annotations

import dataclasses
import os

import pytest
import yaml
from conftest import REPO_ROOT
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pipeline.config import ConfigError, RunConfig, load_config

# Examples per target (three targets); RPV2_FUZZ_EXAMPLES=20000 explores further locally (CI: the default).
MAX_EXAMPLES = int(os.environ.get("RPV2_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=MAX_EXAMPLES,
    deadline=2000,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

DEFAULT_TEXT = (REPO_ROOT / "configs" / "default.yaml").read_text(encoding="utf-8")
PROFILE_TEXTS = {
    p.name: p.read_text(encoding="utf-8") for p in sorted((REPO_ROOT / "configs" / "runners").glob("*.yaml"))
}
KEYS = [f.name for f in dataclasses.fields(RunConfig)]
RETRY_KEYS = ["max_attempts", "base_delay", "max_delay", "jitter", "timeout"]


def alias_bomb(levels: int, width: int = 10) -> str:
    """A flow sequence of ``levels`` anchors, each ``width`` aliases of the previous one: a few hundred bytes
    of YAML that stand for width**levels values (PyYAML shares them; printing or copying expands them)."""
    parts = [f"&l0 [{', '.join(['x'] * width)}]"]
    parts += [f"&l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels)]
    return "[" + ", ".join(parts) + "]"


# YAML scalars as written, including the ones Python turns into surprises: huge integers (beyond float, beyond
# int()'s 4300 digits), .inf/.nan, dates, YAML 1.1 booleans (no, on), nulls, tags, anchors.
YAML_SNIPPETS = [
    "null",
    "~",
    "",
    "true",
    "false",
    "no",
    "on",
    "0",
    "-1",
    "1",
    "3",
    "1.5",
    "-0.0",
    "1e3",
    ".inf",
    "-.inf",
    ".nan",
    "1" + "0" * 400,
    "-1" + "0" * 400,
    "9" * 5000,
    "0x1F",
    "0o17",
    "1_000",
    "2023-06",
    "2023-06-01",
    "CC-MAIN-2023-06",
    "'2023-06'",
    "all",
    "en,de",
    "[en, de]",
    "[]",
    "{}",
    "[[]]",
    "[null]",
    "[read, lid]",
    "'read,lid'",
    "wet",
    "warc",
    "0.7",
    "0.8",
    "0.75",
    "2",
    "{runner: DirectRunner}",
    "{max_attempts: 2}",
    "!!binary aGVsbG8=",
    "!!set {a, b}",
    "!!python/object:os.system x",
    "&a [*a]",
    "&b {x: *b}",
    "'a\\x00b'",
    '"\\x00"',
    '"line\\nbreak"',
    "|\n  block\n",
    "$HOME",
    "${RPV2_NOT_SET_ANYWHERE}",
    "~/x",
    "'" + "a" * 300 + ".yaml'",
    "[" * 40 + "]" * 40,
    "[" * 1000,  # beyond PyYAML's recursive composer, even with the recursion limit hypothesis raises
    "&c [*c]",
    "&d {k: [*d]}",
    alias_bomb(6),
]
YAML_PIECES = [
    ": ",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "&a ",
    "*a",
    "<<: *a",
    "!!binary ",
    "!!python/object:os.system ",
    "|",
    ">",
    "#",
    "'",
    '"',
    "\t",
    "---\n",
    "...\n",
    "? ",
    "%YAML 1.1\n",
    "\n  ",
    "\n",
    "\ufeff",
    "\x00",
    "\x85",
    "$HOME",
    "${RPV2_NOT_SET_ANYWHERE}",
    "~/",
    *YAML_SNIPPETS,
]

python_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _dump(value) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("...").strip()


@st.composite
def yaml_value_texts(draw, key: str) -> str:
    """The YAML text of a value for ``key``: a snippet, a dumped random value, or a mapping for retry/beam."""
    choice = draw(st.sampled_from(["snippet", "snippet", "python", "nested"]))
    if choice == "snippet":
        return draw(st.sampled_from(YAML_SNIPPETS))
    if choice == "nested" or key in ("retry", "beam"):
        keys = (
            RETRY_KEYS if key == "retry" else ["runner", "project", "experiments", "save_main_session", "x"]
        )
        items = draw(
            st.lists(
                st.tuples(st.sampled_from([*keys, "unknown"]), st.sampled_from(YAML_SNIPPETS)), max_size=4
            )
        )
        return "{" + ", ".join(f"{k}: {v}" for k, v in items if "\n" not in v) + "}"
    return _dump(draw(python_values))


@st.composite
def random_config_texts(draw) -> str:
    keys = draw(
        st.lists(st.sampled_from([*KEYS, *KEYS, "num_shard", "1", "null", "[a]"]), max_size=6, unique=True)
    )
    return "".join(f"{key}: {draw(yaml_value_texts(key))}\n" for key in keys)


@st.composite
def mutated_texts(draw, texts: dict[str, str]) -> tuple[str, bytes]:
    """A shipped YAML file (its name, damaged bytes): pieces inserted, spans deleted, lines duplicated /
    dropped / swapped / re-indented, characters replaced, values swapped for random ones."""
    name = draw(st.sampled_from(sorted(texts)))
    text = texts[name]
    for _ in range(draw(st.integers(1, 4))):
        lines = text.split("\n")
        op = draw(st.sampled_from(["insert", "insert", "delete", "line", "indent", "char", "value", "value"]))
        at = draw(st.integers(0, len(text)))
        if op == "insert":
            text = text[:at] + draw(st.sampled_from(YAML_PIECES)) + text[at:]
        elif op == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 40)) :]
        elif op in ("line", "indent"):
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            how = draw(st.sampled_from(["dup", "drop", "swap"])) if op == "line" else "indent"
            if how == "dup":
                lines.insert(j, lines[i])
            elif how == "drop":
                del lines[i]
            elif how == "swap":
                lines[i], lines[j] = lines[j], lines[i]
            else:
                lines[i] = draw(st.sampled_from(["", " ", "  ", "    ", "\t"])) + lines[i].lstrip()
            text = "\n".join(lines)
        elif op == "char":
            text = text[:at] + draw(st.characters()) + text[at + 1 :]
        else:  # a key's value replaced
            keyed = [k for k, line in enumerate(lines) if ":" in line and not line.lstrip().startswith("#")]
            if keyed:
                k = draw(st.sampled_from(keyed))
                key = lines[k].split(":", 1)[0]
                value = draw(yaml_value_texts(key.strip()))
                lines[k] = f"{key}: {value}"
                text = "\n".join(lines)
    data = text.encode("utf-8", "surrogatepass")
    if draw(st.sampled_from([False] * 19 + [True])):  # not UTF-8 at all
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    return name, data


# ---- checks ---------------------------------------------------------------------------------------------


def expect_config_or_error(load, input_size: int) -> RunConfig | None:
    """``load()``'s RunConfig (checked usable), or None after a one-line ConfigError; anything else fails.

    A config that loads is no larger, printed, than a bounded multiple of its file (no YAML alias
    expanding a few bytes into millions of values)."""
    try:
        config = load()
    except ConfigError as exc:
        message = str(exc)
        assert message.strip() and "\n" not in message, f"not a one-line message: {message!r}"
        event("ConfigError")
        return None
    assert isinstance(config, RunConfig)
    summary = config.to_dict()
    assert set(summary) == set(KEYS)
    assert len(repr(summary)) <= 50 * input_size + 20_000, "the config is far larger than its file"
    assert all(arg.startswith("--") for arg in config.beam_args())
    assert config.num_shards >= 1 and config.min_len >= 0 and 0 <= config.lid_threshold <= 1
    event("loaded")
    return config


def _write(tmp_path_factory, name: str, data: bytes):
    path = tmp_path_factory.getbasetemp() / f"fuzz-config-{name}"
    path.write_bytes(data)
    return path


# ---- the fuzz targets ---------------------------------------------------------------------------------


@FUZZ
@given(case=mutated_texts({"default.yaml": DEFAULT_TEXT}))
def test_fuzz_load_config_with_mutated_default_yaml(tmp_path_factory, case):
    name, data = case
    path = _write(tmp_path_factory, name, data)
    expect_config_or_error(lambda: load_config(path), len(data))


@FUZZ
@given(text=random_config_texts())
def test_fuzz_load_config_with_random_values_for_every_key(tmp_path_factory, text):
    data = text.encode("utf-8", "surrogatepass")
    expect_config_or_error(lambda: load_config(_write(tmp_path_factory, "random.yaml", data)), len(data))


@FUZZ
@given(case=mutated_texts(PROFILE_TEXTS))
def test_fuzz_load_config_with_mutated_runner_profiles(tmp_path_factory, case):
    name, data = case
    path = _write(tmp_path_factory, name, data)  # a .yaml path is accepted as a runner profile
    config = expect_config_or_error(lambda: load_config(runner_profile=str(path)), len(data))
    if config is not None:
        assert config.runner_profile == str(path)


def test_unmutated_shipped_files_load(tmp_path):
    """The harness' baseline: what the fuzzers mutate loads as it is."""
    path = tmp_path / "default.yaml"
    path.write_text(DEFAULT_TEXT, encoding="utf-8")
    assert load_config(path) == load_config()
    for name, text in PROFILE_TEXTS.items():
        profile = tmp_path / name
        profile.write_text(text, encoding="utf-8")
        assert (
            load_config(runner_profile=str(profile)).beam
            == load_config(runner_profile=name.removesuffix(".yaml")).beam
        )


# ---- regression tests: crashers the fuzzers found ------------------------------------------------------


@pytest.mark.parametrize(
    "text, key",
    [
        ("num_shards: .inf\n", "num_shards"),  # OverflowError: cannot convert float infinity to integer
        ("lid_threshold: 1" + "0" * 400 + "\n", "lid_threshold"),  # OverflowError: int too large for float
        ("fuzzy_dedup: 1" + "0" * 400 + "\n", "fuzzy_dedup"),  # OverflowError from dedup.lsh.parse_threshold
        ("retry: {timeout: 1" + "0" * 400 + "}\n", "retry"),  # OverflowError from RetryPolicy's checks
    ],
    ids=["num_shards_inf", "lid_threshold_10e400", "fuzzy_dedup_10e400", "retry_timeout_10e400"],
)
def test_regression_numbers_beyond_float_are_config_errors(tmp_path, text, key):
    """Found by the fuzzers: values beyond float's range escaped as OverflowError."""
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"^{key}"):
        load_config(path)


def test_regression_unknown_keys_of_mixed_types_are_listed(tmp_path):
    """Found by the fuzzers: unknown keys of mixed types (``1:`` and ``foo:``) could not be sorted for the
    message: TypeError."""
    path = tmp_path / "c.yaml"
    path.write_text("1: 2\nfoo: 3\n")
    with pytest.raises(ConfigError, match="unknown configuration keys: 1, foo"):
        load_config(path)


def test_regression_yaml_nested_10000_deep_is_a_config_error(tmp_path):
    """Found by the fuzzers: PyYAML's recursive composer raised RecursionError on deep nesting."""
    path = tmp_path / "c.yaml"
    path.write_text("beam: " + "[" * 10_000)
    with pytest.raises(ConfigError, match=r"c\.yaml: nested too deeply"):
        load_config(path)


@pytest.mark.parametrize("name", ["a" * 300 + ".yaml", "a" * 300], ids=["path", "name"])
def test_regression_runner_profile_name_too_long_for_the_filesystem(name):
    """Found by the fuzzers: a profile name longer than the filesystem allows escaped as OSError
    (ENAMETOOLONG) from Path.exists(), which returns False only for missing files."""
    with pytest.raises(ConfigError, match="runner profile .* not found"):
        load_config(runner_profile=name)


@pytest.mark.parametrize("where", ["config", "runner_profile"])
def test_regression_yaml_alias_containing_itself(tmp_path, where):
    """Found by the fuzzers: ``&a [*a]`` (a list that contains itself) under ``beam:`` raised RecursionError
    while a runner profile's ``$VAR``s were expanded, and a config holding one loaded, then failed in
    to_dict()."""
    path = tmp_path / "c.yaml"
    path.write_text("beam:\n  runner: &a [*a]\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: a YAML alias refers to a value that contains it"):
        load_config(path) if where == "config" else load_config(runner_profile=str(path))


def test_regression_yaml_alias_bomb_is_refused(tmp_path):
    """Found by the fuzzers: 300 bytes of nested aliases loaded as a million values (printing the config
    or building its Beam arguments expands them: 5.8 MB from a 1.9 kB runner profile); the deeper
    version of the same file is billions."""
    path = tmp_path / "c.yaml"
    path.write_text(f"beam:\n  experiments: {alias_bomb(9)}\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: YAML aliases expand to more than 100000 values"):
        load_config(path)


def test_shared_yaml_aliases_below_the_bound_still_load(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("beam:\n  experiments: &e [a, b]\n  other: *e\n")
    assert load_config(path).beam_args()[:2] == ["--experiments=a", "--experiments=b"]
