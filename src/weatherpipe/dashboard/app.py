"""The dashboard's entry point: page setup and the router to one page per module of `views/`.

Served by `weatherpipe dashboard`; settings come from the environment like everywhere else.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st
from streamlit.navigation.page import StreamlitPage

from weatherpipe.dashboard import collector, ui
from weatherpipe.dashboard.views import kafka, pipeline, weather

collector.freeze_imports()


def _page(
    render: Callable[[], None], title: str, icon: str, url_path: str, default: bool = False
) -> StreamlitPage:
    """A page that runs `render`. Pages are functions of imported modules, not script files:
    Streamlit compiles a page's script anew for every session that opens once no other is
    left (about 20 ms for each of these pages), while an imported module is compiled once."""

    def run() -> None:
        ui.page(render)

    return st.Page(run, title=title, icon=icon, url_path=url_path, default=default)


st.set_page_config(
    page_title="weatherpipe", page_icon=":material/partly_cloudy_day:", layout="wide"
)
router = st.navigation(
    [
        _page(weather.render, "Weather", ":material/thermostat:", "weather", default=True),
        _page(pipeline.render, "Pipeline", ":material/account_tree:", "pipeline"),
        _page(kafka.render, "Kafka", ":material/dns:", "kafka"),
    ]
)
router.run()
