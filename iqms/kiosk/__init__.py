"""The self-service kiosk that prints numbered tickets."""
