"""IQMS core: models, services, security, queue engine. No front-end imports here."""
