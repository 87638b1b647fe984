"""The Streamlit dashboard: `app.py` routes to one page per module under `views/`."""
