"""The dashboard's entry point: page setup and the router to one page per file.

Served by `weatherpipe dashboard`; settings come from the environment like everywhere else.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

# Not "pages": Streamlit would also serve a folder of that name as pages of their own, run
# without this router (and its page setup) when a page's URL is the first one opened.
PAGES = Path(__file__).resolve().parent / "views"

st.set_page_config(
    page_title="weatherpipe", page_icon=":material/partly_cloudy_day:", layout="wide"
)
router = st.navigation(
    [
        st.Page(PAGES / "weather.py", title="Weather", icon=":material/thermostat:", default=True),
        st.Page(PAGES / "pipeline.py", title="Pipeline", icon=":material/account_tree:"),
        st.Page(PAGES / "kafka.py", title="Kafka", icon=":material/dns:"),
    ]
)
router.run()
