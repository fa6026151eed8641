"""The three-system demo with a real ERP: a replayed Odoo and a CRM and PSA derived from its records.

``tieout demo generate --odoo-records DIR`` reads a dump of a real Odoo (``<model>.json`` files, see
:mod:`demo.odoo_replay`) and writes, under ``HOME``:

- ``demo/crm/*`` and ``demo/psa/*``: HubSpot and Harvest views of the same firm, derived from the real
  customers, sales orders, projects, employees, timesheets and invoices (:mod:`demo.real_erp.derive`),
  with seeded defects (:mod:`demo.real_erp.defects`), in the tables of :mod:`demo.tables`, which the
  HubSpot and Harvest simulators serve unchanged. No ERP table is written: the ERP is the dump,
  which ``tieout demo serve --odoo-records DIR`` replays where ``HOME/sources.yaml`` puts the Odoo;
- ``demo/crosswalks/*.csv``: the firm's id maps where the CRM or the PSA holds no link the real
  Odoo has (HubSpot company -> customer code; Harvest time entry -> Odoo timesheet line);
- ``demo/ref/fx_rates``: the Odoo's own currency rates, per month, to USD;
- ``demo/ground_truth.parquet``: every reconciliation break the rules must report, those of the
  injected defects and those the real records cause on their own (:mod:`demo.real_erp.truth`);
- ``rules.yaml``: the starter catalogue keyed on what a stock Odoo holds (``demo/real_erp/rules.yaml``);
- ``sources.yaml``, ``.env``, ``users.yaml`` and ``demo/manifest.json``, as the demo firm's.
"""

#: ``mode`` of ``HOME/demo/manifest.json`` for this demo: its ERP is a dump, served with --odoo-records.
MODE = "real_erp"
