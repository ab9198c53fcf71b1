"""The status page and the JSON views behind it: gathered from storage (`data`), rendered as HTML and SVG.

Framework-free: `triggers/page.py` and `triggers/pipelines.py` are the HTTP shims.
"""
