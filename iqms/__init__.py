"""IQMS: intelligent queue management for clinics and outpatient departments."""

__version__ = "0.1.0"
