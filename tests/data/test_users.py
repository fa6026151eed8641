"""users.yaml: loading and its errors, bcrypt sign-in, the permission table, legal-entity limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml

from data.users import (
    ACTIONS,
    PERMISSIONS,
    ROLES,
    User,
    Users,
    UsersError,
    demo_users,
    hash_password,
    load_users,
)

PASSWORD = "correct horse battery staple"
HASH = hash_password(PASSWORD, rounds=4)


def _user(name: str = "fiona", role: str = "finance", **extra: Any) -> dict[str, Any]:
    return {"name": name, "display_name": name.title(), "role": role, "password_hash": HASH, **extra}


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "users.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data, encoding="utf-8")
    return path


def test_load_valid_file(tmp_path: Path) -> None:
    path = _write(tmp_path, {"users": [_user(), _user("uma", legal_entities=["UK"]), _user("ada", "admin")]})
    users = load_users(path)
    assert len(users) == 3 and "uma" in users and users.path == path
    assert [u.name for u in users] == ["fiona", "uma", "ada"]
    uma = users.get("uma")
    assert uma is not None and uma.entity_filter() == ["UK"] and uma.role == "finance"
    fiona = users.get("fiona")
    assert fiona is not None and fiona.entity_filter() is None
    assert users.get("nobody") is None


def test_hash_password_is_bcrypt_and_not_plaintext() -> None:
    hashed = hash_password(PASSWORD, rounds=4)
    assert hashed.startswith("$2b$04$") and PASSWORD not in hashed
    assert bcrypt.checkpw(PASSWORD.encode(), hashed.encode())
    assert hash_password(PASSWORD, rounds=4) != hashed  # salted
    with pytest.raises(ValueError, match="empty"):
        hash_password("")
    with pytest.raises(ValueError, match="72 bytes"):
        hash_password("é" * 40)  # 80 bytes in UTF-8


def test_authenticate_success_and_failure() -> None:
    users = Users([User.model_validate(_user()), User.model_validate(_user("uma", legal_entities=["UK"]))])
    user = users.authenticate("fiona", PASSWORD)
    assert user is not None and user.name == "fiona"
    assert users.authenticate("  Fiona ", PASSWORD) is user  # logins are trimmed and lower-cased
    assert users.authenticate("fiona", "wrong") is None
    assert users.authenticate("fiona", PASSWORD.upper()) is None
    assert users.authenticate("fiona", "") is None
    assert users.authenticate("fiona", PASSWORD + "x" * 80) is None  # beyond bcrypt's 72 bytes
    assert users.authenticate("uma", PASSWORD) is not None
    assert users.authenticate("nobody", PASSWORD) is None


def test_every_attempt_spends_one_bcrypt_check(monkeypatch: pytest.MonkeyPatch) -> None:
    users = Users([User.model_validate(_user())])
    calls: list[bytes] = []
    real = bcrypt.checkpw

    def spy(password: bytes, hashed: bytes) -> bool:
        calls.append(hashed)
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", spy)
    for name, password in [("fiona", PASSWORD), ("fiona", "bad"), ("nobody", PASSWORD), ("fiona", ""),
                           ("nobody", "x" * 100)]:  # fmt: skip
        users.authenticate(name, password)
    assert len(calls) == 5
    # An unknown user is checked against a dummy hash of the same cost as the real ones.
    assert calls[2] != HASH.encode() and calls[2].startswith(b"$2b$04$")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", ACTIONS)
def test_permission_table(role: str, action: str) -> None:
    table: dict[str, set[str]] = {
        "executive": {"view"},
        "pmo": {"view", "comment", "export"},
        "finance": {"view", "assign", "comment", "set_status", "export"},
        "admin": set(ACTIONS),
    }
    expected = table[role]
    user = User.model_validate(_user(role=role))
    assert user.can(action) is (action in expected)  # type: ignore[arg-type]
    assert PERMISSIONS[role] == expected  # type: ignore[index]


def test_unknown_action_is_an_error_not_a_no() -> None:
    with pytest.raises(ValueError, match="unknown action 'delete'"):
        User.model_validate(_user()).can("delete")  # type: ignore[arg-type]


def test_entity_filter_and_sees() -> None:
    uma = User.model_validate(_user(legal_entities=["UK", "DE"]))
    assert uma.entity_filter() == ["UK", "DE"]
    assert uma.sees("UK") and not uma.sees("US") and not uma.sees(None)
    everyone = User.model_validate(_user())
    assert everyone.sees("US") and everyone.sees(None)


def test_repr_hides_the_hash() -> None:
    user = User.model_validate(_user())
    assert HASH not in repr(user) and HASH not in str(user)
    assert HASH not in repr(Users([user]))


INVALID_FILES: list[tuple[str, Any, list[str]]] = [
    ("unknown role", {"users": [_user(), _user("bob", role="boss")]},
     ["user 'bob' (entry 2), key role", "'boss'", "finance", "admin"]),
    ("plaintext hash", {"users": [_user("bob", password_hash="hunter2hunter2")]},
     ["user 'bob' (entry 1), key password_hash", "not a bcrypt hash", "plaintext passwords are refused"]),
    ("password key", {"users": [{**_user("bob"), "password": "hunter2hunter2"}]},
     ["user 'bob' (entry 1), key password", "replace 'password' with 'password_hash'"]),
    ("duplicate names", {"users": [_user("bob"), _user("ann"), _user("bob")]},
     ["listed more than once: bob"]),
    ("extra key", {"users": [_user("bob", team="x")]}, ["user 'bob' (entry 1), key team", "Extra inputs"]),
    ("missing key", {"users": [{"name": "bob", "role": "pmo", "password_hash": HASH}]},
     ["user 'bob' (entry 1), key display_name", "Field required"]),
    ("empty entities", {"users": [_user("bob", legal_entities=[])]},
     ["key legal_entities", "leave the key out"]),
    ("repeated entity", {"users": [_user("bob", legal_entities=["UK", "UK"])]}, ["more than once"]),
    ("bad login", {"users": [_user("Bob Smith")]}, ["key name", "lower-case", "'Bob Smith'"]),
    ("no users", {"users": []}, ["users", "at least 1"]),
    ("unknown top key", {"users": [_user()], "admins": []}, ["admins", "Extra inputs"]),
    ("not a mapping", "- just\n- a list\n", ["expected a mapping with a 'users' list"]),
    ("not yaml", "users: [\n", ["not valid YAML"]),
]  # fmt: skip


@pytest.mark.parametrize(("case", "data", "fragments"), INVALID_FILES, ids=[c[0] for c in INVALID_FILES])
def test_invalid_files(tmp_path: Path, case: str, data: Any, fragments: list[str]) -> None:
    path = _write(tmp_path, data)
    with pytest.raises(UsersError) as info:
        load_users(path)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert message.startswith(str(path))
    for fragment in fragments:
        assert fragment in message, f"{case}: {fragment!r} not in {message!r}"
    # Never a secret in an error message.
    assert "hunter2" not in message and HASH not in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UsersError, match="users.yaml: not found"):
        load_users(tmp_path / "users.yaml")


def test_demo_users_one_per_role_plus_uk_finance(tmp_path: Path) -> None:
    rows = demo_users("demo-pass", rounds=4)
    assert sorted(r["role"] for r in rows) == sorted([*ROLES, "finance"])
    text = yaml.safe_dump({"users": rows})
    assert "demo-pass" not in text  # only hashes are written
    users = load_users(_write(tmp_path, text))
    uk = users.get("finance_uk")
    assert uk is not None and uk.role == "finance" and uk.entity_filter() == ["UK"]
    for user in users:
        assert users.authenticate(user.name, "demo-pass") is user
        assert users.authenticate(user.name, "not-it") is None


def test_tieout_user_add_writes_a_hash_and_refuses_a_second_add(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cli import app

    runner = CliRunner()
    args = ["user", "add", "olga", "--role", "finance", "--home", str(tmp_path), "--entity", "YC",
            "--display-name", "Olga (YC finance)"]  # fmt: skip
    added = runner.invoke(app, args, input="s3cret-pw\ns3cret-pw\n")
    assert added.exit_code == 0, added.output
    users = load_users(tmp_path / "users.yaml")
    olga = users.authenticate("olga", "s3cret-pw")
    assert olga is not None and olga.legal_entities == ("YC",) and olga.display_name == "Olga (YC finance)"
    assert "s3cret-pw" not in (tmp_path / "users.yaml").read_text()
    assert (tmp_path / "users.yaml").stat().st_mode & 0o777 == 0o600
    again = runner.invoke(app, args, input="other-pw\nother-pw\n")
    assert again.exit_code == 2 and "exists" in again.output
    replaced = runner.invoke(app, [*args, "--replace"], input="other-pw\nother-pw\n")
    assert replaced.exit_code == 0 and load_users(tmp_path / "users.yaml").authenticate("olga", "other-pw")
    bad = runner.invoke(app, ["user", "add", "Bad Name", "--role", "boss", "--home", str(tmp_path)],
                        input="pw-123456\npw-123456\n")  # fmt: skip
    assert (
        bad.exit_code == 2 and "role" in bad.output and "name" in bad.output and "pw-123456" not in bad.output
    )
    assert len(load_users(tmp_path / "users.yaml")) == 1
