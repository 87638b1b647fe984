"""The dashboard's pages, one module each; the router in `app.py` runs each page's `render`."""
