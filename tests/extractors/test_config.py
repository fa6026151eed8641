"""sources.yaml: values naming environment variables (``${VAR}``, ``${VAR:-default}``), objects per connector."""

from __future__ import annotations

from pathlib import Path

import pytest

from extractors import harvest, hubspot
from extractors.config import ConfigError, HarvestSystem, HubSpotSystem, OdooSystem, load_sources

ODOO = """
systems:
  erp:
    connector: odoo
    base_url: ${TIEOUT_TEST_URL}
    database: ${TIEOUT_TEST_DB:-odoo}
    auth: {user_env: ODOO_USER, api_key_env: ODOO_API_KEY}
    objects: [invoices]
    domains:
      invoices: [[company_id, "=", "${TIEOUT_TEST_COMPANY:-1}"]]
"""


def test_values_are_read_from_the_environment_or_their_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text(ODOO)
    monkeypatch.setenv("TIEOUT_TEST_URL", "https://odoo.example.com/")
    monkeypatch.delenv("TIEOUT_TEST_DB", raising=False)
    monkeypatch.setenv("TIEOUT_TEST_COMPANY", "2")
    system = load_sources(path).system("erp")
    assert isinstance(system, OdooSystem)
    assert (system.base_url, system.database) == ("https://odoo.example.com", "odoo")
    assert system.domains["invoices"] == [["company_id", "=", "2"]]
    assert system.auth.user_env == "ODOO_USER"  # auth names variables; they are never expanded


def test_an_unset_variable_without_default_is_refused_with_file_key_and_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text(ODOO)
    monkeypatch.delenv("TIEOUT_TEST_URL", raising=False)
    with pytest.raises(ConfigError) as caught:
        load_sources(path)
    message = str(caught.value)
    assert (
        str(path) in message and "systems.erp.base_url" in message and "TIEOUT_TEST_URL is not set" in message
    )


def test_what_a_connector_serves_is_what_its_endpoints_read() -> None:
    """The config's list (config cannot import the connectors, which import it) against the endpoints."""
    assert HarvestSystem.serves == tuple(harvest.ENDPOINTS)
    assert HubSpotSystem.serves == tuple(hubspot.ENDPOINTS)


@pytest.mark.parametrize(
    ("connector", "auth", "unserved"),
    [
        ("hubspot", "{token_env: T}", "time_entries"),
        ("harvest", "{token_env: T, account_id_env: A}", "invoice_lines"),
    ],
)
def test_an_object_the_vendors_api_does_not_serve_is_refused_with_what_it_serves(
    tmp_path: Path, connector: str, auth: str, unserved: str
) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text(
        f"systems:\n  src:\n    connector: {connector}\n    auth: {auth}\n    objects: [customers, {unserved}]\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_sources(path)
    message = str(caught.value)
    assert "systems.src" in message and f"{unserved}: not served by this connector" in message
    assert "it serves customers, projects" in message
