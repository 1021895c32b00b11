"""ImageHosting backend: domain services below `server/app.py`, composed there for Tornado."""
