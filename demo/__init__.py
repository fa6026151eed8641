"""The demo firm: its generator, ground truth and the simulators of HubSpot, Harvest and Odoo."""
