"""``HOME/sources.yaml``: the source systems, validated with pydantic when loaded.

Example (the demo writes one like it)::

    reporting_currency: USD
    systems:
      psa:
        connector: harvest              # hubspot | harvest | odoo | sql | files
        base_url: https://api.harvestapp.com
        auth: {token_env: HARVEST_TOKEN, account_id_env: HARVEST_ACCOUNT_ID}
        objects: [customers, projects, time_entries, invoices]
        max_requests_per_min: 400       # the vendor's documented limit
        schedule: {interval_minutes: 30}   # or {cron: "15 * * * *"}
        freshness_sla_minutes: 120
        mappings:                       # optional overrides of the default mapping
          customers: {fields: {name: "$.name"}}
        value_maps:                     # vendor value -> canonical value, for lookups
          legal_entities: {"1": US}

Secrets are never in the file: ``auth`` names the environment variables that hold them (the app
may fill those from Streamlit secrets). Other values may name environment variables too, as
``${ODOO_URL}`` or ``${ODOO_DB:-odoo}`` (a default after ``:-``), so that one file serves every
installation; an unset variable without a default is refused. A file that does not validate is
refused with :class:`ConfigError` naming the file, the key path and what was expected.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from apscheduler.triggers.cron import CronTrigger
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from data.canonical import ObjectName
from extractors.mapping import Expr, Lookup, ObjectMapping
from extractors.odoo_models import odoo_model

__all__ = [
    "ConfigError",
    "FilesSystem",
    "HarvestSystem",
    "HttpSystem",
    "HubSpotSystem",
    "MappingOverride",
    "OdooSystem",
    "Schedule",
    "SourcesConfig",
    "SqlSystem",
    "SystemConfig",
    "load_sources",
    "secret",
]


class ConfigError(ValueError):
    """sources.yaml (or a secret it names) is missing or invalid; the message says where and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Schedule(_Strict):
    """When a system is extracted: every ``interval_minutes``, or on a crontab line (UTC)."""

    interval_minutes: Annotated[int, Field(gt=0)] | None = None
    cron: str | None = None

    @model_validator(mode="after")
    def _one_of(self) -> Schedule:
        if (self.interval_minutes is None) == (self.cron is None):
            raise ValueError("give exactly one of interval_minutes or cron")
        if self.cron is not None:
            try:
                CronTrigger.from_crontab(self.cron, timezone="UTC")
            except ValueError as exc:
                raise ValueError(f"cron {self.cron!r} is not a crontab line: {exc}") from None
        return self


class LookupSpec(_Strict):
    """A mapping value translated through a value map (see :class:`extractors.mapping.Lookup`)."""

    value: str
    map: str
    strict: bool = True


class MappingOverride(_Strict):
    """Overrides of one object's default mapping: column expressions and the record filter."""

    fields: dict[str, str | LookupSpec] = Field(default_factory=dict)
    where: str | None = None

    def applied_to(self, mapping: ObjectMapping) -> ObjectMapping:
        """``mapping`` with these column expressions and record filter taking precedence."""
        exprs: dict[str, Expr] = {
            k: v if isinstance(v, str) else Lookup(v.value, v.map, v.strict) for k, v in self.fields.items()
        }
        return mapping.overridden(exprs, self.where)


class _System(_Strict):
    objects: Annotated[list[ObjectName], Field(min_length=1)]
    schedule: Schedule = Schedule(interval_minutes=60)
    freshness_sla_minutes: Annotated[int, Field(gt=0)] = 180
    mappings: dict[ObjectName, MappingOverride] = Field(default_factory=dict)
    value_maps: dict[str, dict[str, str]] = Field(default_factory=dict)

    #: The objects the vendor's API serves (None: any, as mapped from files or SQL).
    serves: ClassVar[tuple[str, ...] | None] = None

    @field_validator("objects")
    @classmethod
    def _listed_once_and_served(cls, objects: list[str]) -> list[str]:
        if len(set(objects)) != len(objects):
            raise ValueError("objects are listed more than once")
        unserved = [o for o in objects if cls.serves is not None and o not in cls.serves]
        if unserved:
            raise ValueError(
                f"{', '.join(unserved)}: not served by this connector; "
                f"it serves {', '.join(cls.serves or ())}"
            )
        return objects


class HttpSystem(_System):
    """What every HTTP source has: base URL, timeout, client-side rate limit."""

    base_url: str
    timeout_s: Annotated[float, Field(gt=0)] = 30.0
    max_requests_per_min: Annotated[float, Field(gt=0)] | None = None

    @field_validator("base_url")
    @classmethod
    def _http(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return url.rstrip("/")


class HubSpotAuth(_Strict):
    """HubSpot private-app token, by environment variable name."""

    token_env: str


class HubSpotSystem(HttpSystem):
    """HubSpot CRM v3: companies -> customers, closed-won deals -> projects."""

    connector: Literal["hubspot"]
    serves = ("customers", "projects")
    base_url: str = "https://api.hubapi.com"
    auth: HubSpotAuth
    # HubSpot private apps: 100 requests per 10 s (Free/Starter) = 600 per minute; 95% of it, so
    # that timing jitter never tips the vendor's sliding window over.
    max_requests_per_min: Annotated[float, Field(gt=0)] | None = 570
    page_size: Annotated[int, Field(gt=0, le=100)] = 100


class HarvestAuth(_Strict):
    """Harvest personal access token and account id, by environment variable name."""

    token_env: str
    account_id_env: str


class HarvestSystem(HttpSystem):
    """Harvest v2: clients, projects, time entries, invoices; incremental on ``updated_since``."""

    connector: Literal["harvest"]
    serves = ("customers", "projects", "time_entries", "invoices")
    base_url: str = "https://api.harvestapp.com"
    auth: HarvestAuth
    # Harvest: 100 requests per 15 s = 400 per minute; 95% of it (see HubSpotSystem).
    max_requests_per_min: Annotated[float, Field(gt=0)] | None = 380
    page_size: Annotated[int, Field(gt=0, le=2000)] = 2000
    incremental: bool = True


class OdooAuth(_Strict):
    """Odoo login and API key or password, by environment variable name.

    The API key is used when its variable is set, else the password (JSON-RPC only: JSON-2 takes
    an API key). ``user_env`` is the login, which JSON-RPC needs and JSON-2 does not.
    """

    user_env: str | None = None
    api_key_env: str | None = None
    password_env: str | None = None

    @model_validator(mode="after")
    def _some_secret(self) -> OdooAuth:
        if self.api_key_env is None and self.password_env is None:
            raise ValueError("name api_key_env or password_env (or both: the API key is used when set)")
        return self


class OdooSystem(HttpSystem):
    """Odoo 17-19 over JSON-RPC (``/jsonrpc``) or Odoo 19's JSON-2 API (``/json/2``).

    ``models`` picks the Odoo model an object is read from where there is a choice (projects:
    ``project.project``, or ``crm.lead`` for an Odoo used as the CRM); ``domains`` replaces an
    object's default search domain.
    """

    connector: Literal["odoo"]
    database: str
    protocol: Literal["jsonrpc", "json2"] = "jsonrpc"
    auth: OdooAuth
    page_size: Annotated[int, Field(gt=0, le=10_000)] = 1000
    models: dict[ObjectName, str] = Field(default_factory=dict)
    domains: dict[ObjectName, list[Any]] = Field(default_factory=dict)

    def key_env(self, env: Mapping[str, str]) -> str:
        """The variable whose value is sent as the key.

        The API key's when it is set in ``env`` (always for JSON-2), else the password's (JSON-RPC).
        """
        auth = self.auth
        json2 = self.protocol == "json2"
        use_key = json2 or auth.password_env is None or bool(env.get(auth.api_key_env or ""))
        chosen = auth.api_key_env if use_key else auth.password_env
        assert chosen is not None  # OdooAuth and _protocol_auth make sure the needed one is named
        return chosen

    @field_validator("models")
    @classmethod
    def _known_models(cls, models: dict[str, str]) -> dict[str, str]:
        for obj, name in models.items():
            try:
                odoo_model(obj, name)
            except KeyError as exc:
                raise ValueError(str(exc.args[0])) from None
        return models

    @model_validator(mode="after")
    def _protocol_auth(self) -> OdooSystem:
        if self.protocol == "jsonrpc" and self.auth.user_env is None:
            raise ValueError("auth.user_env: JSON-RPC logs in, so it needs the login's variable")
        if self.protocol == "json2" and self.auth.api_key_env is None:
            raise ValueError("auth.api_key_env: JSON-2 authenticates with an API key only")
        return self


class SqlSystem(_System):
    """Any database SQLAlchemy reaches: one query or table per object."""

    connector: Literal["sql"]
    url_env: str
    queries: dict[ObjectName, str] = Field(default_factory=dict)
    tables: dict[ObjectName, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _covered(self) -> SqlSystem:
        for obj in self.objects:
            if (obj in self.queries) == (obj in self.tables):
                raise ValueError(f"object {obj!r} needs exactly one of queries.{obj} or tables.{obj}")
        return self


class FilesSystem(_System):
    """CSV, XLSX or Parquet files: a path or glob per object, relative to the home folder."""

    connector: Literal["files"]
    paths: dict[ObjectName, str]

    @model_validator(mode="after")
    def _covered(self) -> FilesSystem:
        missing = [o for o in self.objects if o not in self.paths]
        if missing:
            raise ValueError(f"paths has no entry for {', '.join(missing)}")
        for obj, path in self.paths.items():
            if Path(path).suffix.lower() not in (".csv", ".xlsx", ".parquet"):
                raise ValueError(f"paths.{obj}: {path!r} must end in .csv, .xlsx or .parquet")
        return self


SystemConfig = Annotated[
    HubSpotSystem | HarvestSystem | OdooSystem | SqlSystem | FilesSystem, Field(discriminator="connector")
]


class SourcesConfig(_Strict):
    """The whole of sources.yaml: the systems by slug (``crm``, ``psa``, ``erp``, ...).

    ``reporting_currency`` is what amounts at risk are converted to. ``business_date`` pins the
    firm's "today" for reconciliation (ages, ``{as_of}`` in rules): the demo firm is frozen at its
    as-of date; leave it out for a live firm, whose business date is the day of each run.
    ``founded`` is the day the firm started: data-quality checks flag dates before it (leave it out
    and they only flag dates after the business date).
    """

    reporting_currency: Annotated[str, Field(pattern="^[A-Z]{3}$")] = "USD"
    business_date: date | None = None
    founded: date | None = None
    systems: Annotated[dict[str, SystemConfig], Field(min_length=1)]
    path: Path = Path("sources.yaml")

    @field_validator("systems")
    @classmethod
    def _slugs(cls, systems: dict[str, Any]) -> dict[str, Any]:
        for slug in systems:
            if not slug.replace("_", "").isalnum() or not slug.islower():
                raise ValueError(f"system name {slug!r} must be lower-case letters, digits and _")
        return systems

    def system(self, slug: str) -> SystemConfig:
        """Return system ``slug``.

        Raises:
            ConfigError: no such system in the file.
        """
        try:
            return self.systems[slug]
        except KeyError:
            raise ConfigError(
                f"{self.path}: no system {slug!r}; systems: {', '.join(self.systems)}"
            ) from None


def load_sources(path: Path, env: Mapping[str, str] = os.environ) -> SourcesConfig:
    """Read and validate ``path`` (sources.yaml), its ``${VAR}`` references taken from ``env``.

    Raises:
        ConfigError: the file is missing, is not YAML, or does not validate; the message names the
            file, each offending key path and what was expected.
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: not found. Create it (`tieout demo generate` writes one for the demo firm)."
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping with a 'systems' key, found {type(data).__name__}")
    try:
        return SourcesConfig.model_validate({**_interpolated(data, path, "", env), "path": path})
    except ValidationError as exc:
        raise ConfigError(_explain(path, exc)) from None


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _interpolated(value: Any, path: Path, where: str, env: Mapping[str, str]) -> Any:
    """``value`` with every ``${VAR}`` / ``${VAR:-default}`` in its strings replaced from ``env``.

    Raises:
        ConfigError: a variable without a default is unset; names the file, key path and variable.
    """
    if isinstance(value, Mapping):
        return {k: _interpolated(v, path, f"{where}.{k}" if where else str(k), env) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolated(v, path, f"{where}.{i}", env) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def resolve(ref: re.Match[str]) -> str:
        name, default = ref.group(1), ref.group(2)
        found = env.get(name) or default
        if found is None:
            raise ConfigError(
                f"{path}: {where}: environment variable {name} is not set (the value is {value!r}); "
                f"set {name} (HOME/.env is loaded too) or give a default as ${{{name}:-default}}."
            )
        return found

    return _ENV_REF.sub(resolve, value)


def _explain(path: Path, exc: ValidationError) -> str:
    lines = [f"{path}: {exc.error_count()} problem(s):"]
    for err in exc.errors():
        parts = list(err["loc"])
        if len(parts) > 3 and parts[0] == "systems":
            del parts[2]  # the connector tag pydantic adds inside the discriminated union
        loc = ".".join(str(part) for part in parts)
        got = err.get("input")
        shown = "" if isinstance(got, dict | list) or got is None else f" (got {got!r})"
        lines.append(f"  {loc or '<top>'}: {err['msg']}{shown}")
    return "\n".join(lines)


def secret(env_var: str, *, system: str, what: str) -> str:
    """Return the secret held by environment variable ``env_var``.

    Raises:
        ConfigError: the variable is unset or empty; the message names it and where it is looked
            for, never a value.
    """
    value = os.environ.get(env_var, "")
    if not value:
        raise ConfigError(
            f"Missing {what} for source system {system!r}. Looked in: environment variable {env_var} "
            "(also loaded from HOME/.env; the app also reads Streamlit secrets into it). Set the "
            "variable; do not write secrets into sources.yaml."
        )
    return value
