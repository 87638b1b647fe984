"""The Streamlit dashboard: `app.py` routes to one page per file under `views/`."""
