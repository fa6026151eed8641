"""Users and roles: ``HOME/users.yaml``, bcrypt-hashed passwords, a fixed permission table.

Example::

    users:
      - name: fiona                      # the login: lower-case letters, digits, _ . @ -
        display_name: Fiona Finance
        role: finance                    # finance | pmo | executive | admin
        password_hash: "$2b$12$..."      # bcrypt, from data.users.hash_password; never a password
      - name: uma
        display_name: Uma (UK finance)
        role: finance
        password_hash: "$2b$12$..."
        legal_entities: [UK]             # sees and acts on UK rows only; leave out for every entity

Permissions (:data:`PERMISSIONS`; every action the app attributes to the signed-in user):

============  ====================================================================
role          may
============  ====================================================================
executive     ``view``
pmo           ``view``, ``comment``, ``export``
finance       ``view``, ``assign``, ``comment``, ``set_status``, ``export``
admin         everything: also ``run_pipeline`` and ``manage`` (users, schedules, settings)
============  ====================================================================

A user limited to some legal entities sees only their rows everywhere: queries filter with
:meth:`User.entity_filter`, and :class:`data.workflow.Workflow` refuses actions on other entities'
breaks. Passwords and hashes are never logged, shown in a ``repr`` or echoed in an error message.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal, get_args

import bcrypt
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = [
    "ACTIONS",
    "PERMISSIONS",
    "ROLES",
    "Action",
    "Role",
    "User",
    "Users",
    "UsersError",
    "demo_users",
    "hash_password",
    "load_users",
    "save_user",
]

Role = Literal["finance", "pmo", "executive", "admin"]
Action = Literal["view", "comment", "assign", "set_status", "export", "run_pipeline", "manage"]

ROLES: tuple[Role, ...] = get_args(Role)
ACTIONS: tuple[Action, ...] = get_args(Action)

#: What each role may do (see the module docs for the table).
PERMISSIONS: Mapping[Role, frozenset[Action]] = MappingProxyType({
    "executive": frozenset({"view"}),
    "pmo": frozenset({"view", "comment", "export"}),
    "finance": frozenset({"view", "assign", "comment", "set_status", "export"}),
    "admin": frozenset(ACTIONS),
})  # fmt: skip

#: bcrypt's own limit: it ignores (bcrypt >= 5 refuses) password bytes past the 72nd.
MAX_PASSWORD_BYTES = 72
DEFAULT_ROUNDS = 12
_BCRYPT_HASH = re.compile(r"^\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.@-]*$")
# Fields whose given value may be repeated in an error message (never a password or hash).
_ECHOED = frozenset({"name", "role", "legal_entities"})


class UsersError(ValueError):
    """users.yaml is missing or invalid; the message names the file, the user and the key."""


class User(BaseModel):
    """One user of the app.

    Attributes:
        name: the login (lower-case letters, digits, ``_ . @ -``), recorded in the audit log.
        display_name: shown in the app.
        role: ``finance``, ``pmo``, ``executive`` or ``admin`` (see :data:`PERMISSIONS`).
        password_hash: bcrypt hash (``$2b$...``); left out of ``repr``.
        legal_entities: the legal entities (``legal_entity_id``) the user sees, or None for all.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(min_length=1, max_length=64)]
    display_name: Annotated[str, Field(min_length=1, max_length=128)]
    role: Role
    password_hash: str = Field(repr=False)
    legal_entities: tuple[Annotated[str, Field(min_length=1, max_length=64)], ...] | None = None

    @field_validator("name")
    @classmethod
    def _login(cls, name: str) -> str:
        if not _NAME.match(name):
            raise ValueError(
                "must be lower-case letters, digits and _ . @ - (starting with a letter or digit)"
            )
        return name

    @field_validator("password_hash")
    @classmethod
    def _hashed(cls, value: str) -> str:
        if not _BCRYPT_HASH.match(value):
            raise ValueError(
                "is not a bcrypt hash; plaintext passwords are refused. Store the output of "
                "data.users.hash_password (it starts with $2b$)"
            )
        return value

    @field_validator("legal_entities")
    @classmethod
    def _entities(cls, entities: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if entities is None:
            return None
        if not entities:
            raise ValueError("is empty: list at least one legal entity, or leave the key out for all")
        if len(set(entities)) != len(entities):
            raise ValueError("lists a legal entity more than once")
        return entities

    def can(self, action: Action) -> bool:
        """Return whether the user's role may do ``action`` (see :data:`PERMISSIONS`).

        Raises:
            ValueError: ``action`` is not one of :data:`ACTIONS` (a typo must not read as "no").
        """
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}; actions: {', '.join(ACTIONS)}")
        return action in PERMISSIONS[self.role]

    def entity_filter(self) -> list[str] | None:
        """Return the legal entities the user is limited to, or None when the user sees all of them."""
        return None if self.legal_entities is None else list(self.legal_entities)

    def sees(self, legal_entity_id: str | None) -> bool:
        """Return whether a row of ``legal_entity_id`` is visible (one without: only to unlimited users)."""
        return self.legal_entities is None or legal_entity_id in self.legal_entities


class _UsersFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    users: Annotated[list[User], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique(self) -> _UsersFile:
        counts = Counter(u.name for u in self.users)
        twice = sorted(name for name, n in counts.items() if n > 1)
        if twice:
            raise ValueError(f"user(s) listed more than once: {', '.join(twice)}")
        return self


class Users:
    """The users of one users.yaml, by login name."""

    def __init__(self, users: list[User], *, path: Path | None = None) -> None:
        by_name = {u.name: u for u in users}
        if len(by_name) != len(users):
            raise UsersError(f"{path or 'users'}: a user name is listed more than once")
        self.path = path
        self._by_name = by_name
        costs = Counter(_cost(u.password_hash) for u in users)
        # Unknown names are checked against a hash of the usual cost, so that their answer takes as long.
        self._dummy_rounds = costs.most_common(1)[0][0] if costs else DEFAULT_ROUNDS

    def __iter__(self) -> Iterator[User]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __repr__(self) -> str:
        return f"Users({', '.join(self._by_name)})"

    def get(self, name: str) -> User | None:
        """Return the user with login ``name``, or None."""
        return self._by_name.get(name)

    def authenticate(self, name: str, password: str) -> User | None:
        """Return the user if ``password`` is theirs, else None.

        Always spends one bcrypt check (``bcrypt.checkpw``, constant-time), also for an unknown
        name, an empty password or one longer than bcrypt's 72 bytes, so the time taken does not
        tell whether a name exists. Login names are matched after trimming and lower-casing.
        """
        user = self._by_name.get(name.strip().lower())
        secret = password.encode("utf-8")
        usable = user is not None and 0 < len(secret) <= MAX_PASSWORD_BYTES
        stored = user.password_hash if usable and user is not None else _dummy_hash(self._dummy_rounds)
        ok = bcrypt.checkpw(secret[:MAX_PASSWORD_BYTES] or b"-", stored.encode("ascii"))
        return user if ok and usable else None


def load_users(path: Path) -> Users:
    """Read and validate ``path`` (users.yaml).

    Raises:
        UsersError: the file is missing or not YAML, a user has an unknown role or key, a password
            is not a bcrypt hash (plaintext is refused), or a name is listed twice; the message
            names the file, the user and the key, never a password or hash.
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsersError(
            f"{path}: not found. Create it with a 'users' list "
            "(hash passwords with data.users.hash_password)."
        ) from None
    except yaml.YAMLError as exc:
        raise UsersError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, Mapping):
        raise UsersError(f"{path}: expected a mapping with a 'users' list, found {type(data).__name__}")
    try:
        parsed = _UsersFile.model_validate(data)
    except ValidationError as exc:
        raise UsersError(_explain(path, data, exc)) from None
    return Users(parsed.users, path=path)


def _explain(path: Path, data: Mapping[str, Any], exc: ValidationError) -> str:
    raw = data.get("users")
    lines = [f"{path}: {exc.error_count()} problem(s):"]
    for err in exc.errors():
        loc = list(err["loc"])
        where = ".".join(str(p) for p in loc) or "users"
        if len(loc) >= 2 and loc[0] == "users" and isinstance(loc[1], int) and isinstance(raw, list):
            entry = raw[loc[1]] if loc[1] < len(raw) else None
            name = entry.get("name") if isinstance(entry, Mapping) else None
            who = f"user {name!r}" if isinstance(name, str) else "user"
            key = ".".join(str(p) for p in loc[2:]) or "<entry>"
            where = f"{who} (entry {loc[1] + 1}), key {key}"
        msg = err["msg"].removeprefix("Value error, ")
        field = str(loc[2]) if len(loc) > 2 else ""
        if err["type"] == "extra_forbidden" and field == "password":
            msg = (
                "plaintext passwords are refused: replace 'password' with 'password_hash' "
                "(data.users.hash_password)"
            )
        got = err.get("input")
        shown = f" (got {got!r})" if field in _ECHOED and isinstance(got, str | int | float) else ""
        lines.append(f"  {where}: {msg}{shown}")
    return "\n".join(lines)


def save_user(path: Path, user: User, *, replace: bool = False) -> Users:
    """Add ``user`` to users.yaml at ``path`` (created if missing, mode 0600); return the users.

    The file is validated before and after, and written whole to a temporary file renamed over it,
    so a failure leaves it as it was.

    Raises:
        UsersError: the file is invalid, or the user exists and ``replace`` is False.
    """
    current = list(load_users(path)) if path.exists() else []
    if any(u.name == user.name for u in current) and not replace:
        raise UsersError(f"{path}: user {user.name!r} exists; replace it explicitly to change it")
    users = [u for u in current if u.name != user.name] + [user]
    body = {"users": [u.model_dump(exclude_none=True, mode="json") for u in users]}
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(yaml.safe_dump(body, sort_keys=False), encoding="utf-8")
    tmp.chmod(0o600)
    load_users(tmp)
    tmp.replace(path)
    return Users(users, path=path)


def hash_password(plain: str, *, rounds: int = DEFAULT_ROUNDS) -> str:
    """Return the bcrypt hash of ``plain`` for users.yaml (``rounds``: log2 of the work factor, 4-31).

    Raises:
        ValueError: the password is empty or longer than 72 bytes in UTF-8 (bcrypt's limit).
    """
    secret = plain.encode("utf-8")
    if not secret:
        raise ValueError("the password is empty")
    if len(secret) > MAX_PASSWORD_BYTES:
        raise ValueError(f"the password is longer than {MAX_PASSWORD_BYTES} bytes (UTF-8), bcrypt's limit")
    return bcrypt.hashpw(secret, bcrypt.gensalt(rounds=rounds)).decode("ascii")


def demo_users(password: str, *, rounds: int = DEFAULT_ROUNDS) -> list[dict[str, Any]]:
    """Return the demo firm's users, ready for ``yaml.safe_dump({"users": ...})``, all with ``password``.

    One user per role (``admin``, ``finance``, ``pmo``, ``executive``) and ``finance_uk``, a
    finance user limited to legal entity ``UK``.

    Raises:
        ValueError: ``password`` is empty or longer than 72 bytes.
    """
    people: list[dict[str, Any]] = [
        {"name": "admin", "display_name": "Ada Admin", "role": "admin"},
        {"name": "finance", "display_name": "Fiona Finance", "role": "finance"},
        {
            "name": "finance_uk",
            "display_name": "Uma Finance (UK)",
            "role": "finance",
            "legal_entities": ["UK"],
        },
        {"name": "pmo", "display_name": "Piet PMO", "role": "pmo"},
        {"name": "executive", "display_name": "Eve Executive", "role": "executive"},
    ]
    return [{**p, "password_hash": hash_password(password, rounds=rounds)} for p in people]


def _cost(password_hash: str) -> int:
    return int(password_hash.split("$")[2])


@functools.cache
def _dummy_hash(rounds: int) -> str:
    return bcrypt.hashpw(b"no such user", bcrypt.gensalt(rounds=rounds)).decode("ascii")
