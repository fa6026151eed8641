"""Build the connector a system's ``connector:`` key in sources.yaml names."""

from __future__ import annotations

from extractors.base import Connector, ConnectorContext
from extractors.config import (
    FilesSystem,
    HarvestSystem,
    HubSpotSystem,
    OdooSystem,
    SqlSystem,
    SystemConfig,
)
from extractors.files import FilesConnector
from extractors.harvest import HarvestConnector
from extractors.hubspot import HubSpotConnector
from extractors.odoo import OdooConnector
from extractors.sql import SqlConnector

__all__ = ["build_connector"]


def build_connector(system: str, config: SystemConfig, ctx: ConnectorContext) -> Connector:
    """Return the connector for ``system`` as configured.

    Raises:
        extractors.config.ConfigError: a secret the system needs is not set.
    """
    if isinstance(config, HubSpotSystem):
        return HubSpotConnector(system, config, ctx)
    if isinstance(config, HarvestSystem):
        return HarvestConnector(system, config, ctx)
    if isinstance(config, OdooSystem):
        return OdooConnector(system, config, ctx)
    if isinstance(config, SqlSystem):
        return SqlConnector(system, config, ctx)
    if isinstance(config, FilesSystem):
        return FilesConnector(system, config, ctx)
    raise TypeError(f"no connector for {type(config).__name__}")
