"""The demo firm's master data: legal entities, customers, deals, consultants and projects.

This is the firm as it truly is, before any system's view of it (``demo.views``) or any defect
(``demo.defects``). Everything is drawn from one ``random.Random(seed)``, so it is deterministic.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from demo.config import FirmConfig


@dataclass(frozen=True)
class LegalEntity:
    """A company of the firm that issues invoices; its currency is also its customers'."""

    id: str  # "US", "UK", "DE"
    name: str
    currency: str
    country: str
    country_code: str
    odoo_company_id: int
    tax_rate: Decimal  # fraction, e.g. 0.20


LEGAL_ENTITIES: tuple[LegalEntity, ...] = (
    LegalEntity("US", "Tieout Consulting Inc.", "USD", "United States", "US", 1, Decimal("0")),
    LegalEntity("UK", "Tieout Consulting Ltd", "GBP", "United Kingdom", "GB", 2, Decimal("0.20")),
    LegalEntity("DE", "Tieout Consulting GmbH", "EUR", "Germany", "DE", 3, Decimal("0.19")),
)
ENTITY = {e.id: e for e in LEGAL_ENTITIES}
ENTITY_WEIGHTS = (0.5, 0.25, 0.25)
ODOO_COUNTRY_IDS = {"United States": 233, "United Kingdom": 231, "Germany": 57, "France": 75}
CITIES = {
    "US": ("Boston", "Chicago", "Austin", "Denver", "Seattle"),
    "UK": ("London", "Leeds", "Bristol", "Manchester"),
    "DE": ("Berlin", "Hamburg", "Munich", "Cologne"),
}
LEGAL_FORMS = {"US": "Inc.", "UK": "Ltd", "DE": "GmbH"}
_WORDS_A = (
    "Atlas", "Maple", "Horizon", "Vantage", "Summit", "Harbor", "Nimbus", "Cobalt", "Juniper",
    "Granite", "Aurora", "Beacon", "Cedar", "Delta", "Ember", "Falcon", "Gemini", "Helix",
    "Iris", "Keystone", "Lumen", "Meridian", "Northwind", "Orchid", "Pioneer", "Quartz",
    "Redwood", "Sterling", "Tidewater", "Unity", "Vertex", "Willow", "Zenith", "Alder", "Birch",
)  # fmt: skip
_WORDS_B = (
    "Health", "Retail", "Energy", "Logistics", "Media", "Foods", "Capital", "Robotics",
    "Pharma", "Analytics", "Mobility", "Insurance", "Telecom", "Textiles", "Water", "Labs",
    "Aerospace", "Software", "Hotels", "Motors",
)  # fmt: skip
_FIRST = ("Anna", "Ben", "Chloe", "David", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas",
          "Keith", "Lena", "Marco", "Nadia", "Oscar", "Priya", "Rafael", "Sofia", "Tom", "Yuki")  # fmt: skip
_LAST = ("Byrd", "Keller", "Novak", "Okafor", "Patel", "Quinn", "Rossi", "Schmidt", "Tanaka",
         "Urban", "Vogel", "Walsh", "Young", "Zimmer", "Larsen", "Moreau", "Ibrahim", "Costa")  # fmt: skip
_PROJECT_KINDS = ("Website Relaunch", "ERP Rollout", "Data Platform", "Cloud Migration",
                  "CRM Implementation", "Security Audit", "Analytics Roadmap", "Mobile App",
                  "Process Review", "Integration Hub")  # fmt: skip


@dataclass
class Customer:
    """A customer (or prospect) of the firm; ``crm_id`` is its HubSpot company id."""

    crm_id: str
    name: str
    domain: str
    legal_entity: str
    currency: str
    country: str
    city: str
    tax_id: str
    is_customer: bool
    created: date
    project_ids: list[int] = field(default_factory=list)


@dataclass
class Consultant:
    """A person logging time; rates are whole units of the entity's currency per hour."""

    id: int  # Harvest user id
    odoo_employee_id: int
    first_name: str
    last_name: str
    legal_entity: str
    cost_rate: Decimal
    bill_rate: Decimal
    is_project_manager: bool

    @property
    def name(self) -> str:
        """Return the display name."""
        return f"{self.first_name} {self.last_name}"


@dataclass
class Project:
    """A project won by a deal; ``fixed_fee`` projects are invoiced in monthly installments."""

    id: int  # Harvest project id
    code: str
    name: str
    customer: Customer
    legal_entity: str
    fixed_fee: bool
    monthly_fee: Decimal  # fixed-fee installment per month (entity currency), 0 for T&M
    manager_id: int
    starts_on: date
    ends_on: date
    deal_id: str

    @property
    def currency(self) -> str:
        """Return the project's currency (its customer's)."""
        return self.customer.currency


@dataclass
class Deal:
    """A HubSpot deal; closed-won deals lead to a project (``project_code``) or should."""

    id: str
    name: str
    customer: Customer
    amount: Decimal
    stage: str
    close_date: date
    project_code: str | None


@dataclass
class Firm:
    """The whole firm's master data."""

    config: FirmConfig
    window_start: date  # first day of the time history
    customers: list[Customer]
    consultants: list[Consultant]
    projects: list[Project]
    deals: list[Deal]


def month_start(d: date) -> date:
    """Return the first day of ``d``'s month."""
    return d.replace(day=1)


def add_months(d: date, n: int) -> date:
    """Return the first day of the month ``n`` months after ``d``'s month."""
    m = d.year * 12 + d.month - 1 + n
    return date(m // 12, m % 12 + 1, 1)


def month_end(d: date) -> date:
    """Return the last day of ``d``'s month."""
    return add_months(d, 1) - timedelta(days=1)


def _tax_id(rng: random.Random, entity: str) -> str:
    if entity == "US":
        return f"{rng.randint(10, 99)}-{rng.randint(1000000, 9999999)}"
    prefix = "GB" if entity == "UK" else "DE"
    return f"{prefix}{rng.randint(100000000, 999999999)}"


def _customers(rng: random.Random, cfg: FirmConfig, window_start: date) -> list[Customer]:
    size = cfg.size
    names: set[str] = set()
    out: list[Customer] = []
    for i in range(size.customers + size.prospects):
        entity = rng.choices(["US", "UK", "DE"], ENTITY_WEIGHTS)[0]
        while True:
            stem = f"{rng.choice(_WORDS_A)} {rng.choice(_WORDS_B)}"
            if len(names) > len(_WORDS_A) * len(_WORDS_B) // 2:
                stem += f" {rng.randint(2, 999)}"
            name = f"{stem} {LEGAL_FORMS[entity]}"
            if name not in names:
                names.add(name)
                break
        le = ENTITY[entity]
        out.append(
            Customer(
                crm_id=str(9_100_000_000 + i * 17),
                name=name,
                domain=stem.lower().replace(" ", "") + (".com" if entity == "US" else ".eu"),
                legal_entity=entity,
                currency=le.currency,
                country=le.country,
                city=rng.choice(CITIES[entity]),
                tax_id=_tax_id(rng, entity),
                is_customer=i < size.customers,
                created=window_start - timedelta(days=rng.randint(30, 900)),
            )
        )
    return out


def _consultants(rng: random.Random, n: int) -> list[Consultant]:
    out = []
    for i in range(n):
        entity = ("US", "UK", "DE")[i % 3] if i < 3 else rng.choices(["US", "UK", "DE"], ENTITY_WEIGHTS)[0]
        cost = rng.randrange(40, 95)
        out.append(
            Consultant(
                id=4_100_000 + i,
                odoo_employee_id=100 + i,
                first_name=rng.choice(_FIRST),
                last_name=rng.choice(_LAST),
                legal_entity=entity,
                cost_rate=Decimal(cost),
                bill_rate=Decimal(rng.randrange(120, 260, 5)),
                is_project_manager=rng.random() < 0.2 or i < 3,
            )
        )
    return out


def build_firm(cfg: FirmConfig) -> Firm:
    """Draw the firm's master data for ``cfg``.

    Projects: each customer with projects gets about ``projects_per_customer`` of them, running
    3 to 14 months from a start spread over the history window (a few start after ``as_of``:
    planned work, with no time yet). Each project has one closed-won deal; further deals are
    lost, open, or recently won and still waiting for their project (handoff).
    """
    rng = random.Random(cfg.seed)
    size = cfg.size
    window_start = add_months(month_start(cfg.as_of), -(size.months - 1))
    customers = _customers(rng, cfg, window_start)
    consultants = _consultants(rng, size.consultants)
    managers = {e: [c for c in consultants if c.legal_entity == e and c.is_project_manager] or
                [c for c in consultants if c.legal_entity == e] for e in ENTITY}  # fmt: skip
    projects: list[Project] = []
    deals: list[Deal] = []
    seq = {e: 10000 for e in ENTITY}
    history_days = (cfg.as_of - window_start).days
    # Past customers with no project in the window: the first eight, and one in ten of the rest.
    with_projects = [c for i, c in enumerate(customers)
                     if c.is_customer and i >= 8 and rng.random() >= 0.1]  # fmt: skip
    for cust in with_projects:
        n = max(1, round(rng.expovariate(1 / size.projects_per_customer)))
        for _ in range(min(n, 6)):
            start = window_start + timedelta(days=rng.randint(-180, history_days + 20))
            ends = add_months(start, rng.randint(3, 14)) - timedelta(days=1)
            seq[cust.legal_entity] += 1
            code = f"{cust.legal_entity}-{seq[cust.legal_entity]}"
            fixed = rng.random() < 0.25
            won = start - timedelta(days=rng.randint(7, 40))
            deal_id = str(31_000_000_000 + len(deals) * 7)
            amount = Decimal(rng.randrange(20, 400) * 1000)
            projects.append(
                Project(
                    id=27_000_000 + len(projects) * 3,
                    code=code,
                    name=f"{code} {cust.name.split(' ')[0]} {rng.choice(_PROJECT_KINDS)}",
                    customer=cust,
                    legal_entity=cust.legal_entity,
                    fixed_fee=fixed,
                    monthly_fee=Decimal(rng.randrange(8, 40) * 1000) if fixed else Decimal(0),
                    manager_id=rng.choice(managers[cust.legal_entity]).id,
                    starts_on=start,
                    ends_on=ends,
                    deal_id=deal_id,
                )
            )
            cust.project_ids.append(projects[-1].id)
            deals.append(Deal(deal_id, projects[-1].name[len(code) + 1 :], cust, amount,
                              "closedwon", won, code))  # fmt: skip
    for cust in customers:
        for _ in range(rng.randint(0, 2)):
            stage = rng.choice(["closedlost", "appointmentscheduled", "qualifiedtobuy",
                                "contractsent"])  # fmt: skip
            close = cfg.as_of + timedelta(days=rng.randint(-300, 90))
            deals.append(Deal(str(31_000_000_000 + len(deals) * 7),
                              f"{cust.name.split(' ')[0]} {rng.choice(_PROJECT_KINDS)}", cust,
                              Decimal(rng.randrange(10, 300) * 1000), stage, close, None))  # fmt: skip
    return Firm(cfg, window_start, customers, consultants, projects, deals)
