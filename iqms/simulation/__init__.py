"""A discrete-event simulation of a clinic day that drives the real IQMS core.

See :mod:`iqms.simulation.model` for how SimPy and the async core meet,
:mod:`iqms.simulation.scenario` for the scenario format, and
:mod:`iqms.simulation.stats` for what is measured.
"""
