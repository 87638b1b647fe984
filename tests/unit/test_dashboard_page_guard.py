"""A page that fails in a way nobody handled shows one short message, never a traceback."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def test_an_unexpected_error_becomes_a_message_without_traceback() -> None:
    def script() -> None:
        import streamlit as st

        from weatherpipe.dashboard import ui

        def render() -> None:
            st.title("Half drawn")
            {}["no such key"]

        ui.page(render)

    at = AppTest.from_function(script).run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Half drawn"]
    assert len(at.error) == 1
    assert at.error[0].value.startswith("This page cannot be drawn.")
    assert [t.value for t in at.text] == ["KeyError: 'no such key'"]


def test_a_read_error_shows_our_advice_and_the_detail_as_text() -> None:
    def script() -> None:
        from weatherpipe.dashboard import loaders, ui

        def render() -> None:
            raise loaders.DatabaseUnavailableError("Cannot read PostgreSQL.", "**host**: refused")

        ui.page(render)

    at = AppTest.from_function(script).run()
    assert not at.exception
    assert [e.value for e in at.error] == ["Cannot read PostgreSQL."]
    assert [t.value for t in at.text] == ["**host**: refused"]
