"""The template engine behind the page: Jinja2, autoescaping every value, built the first time a page is served.

Importing this module does not import Jinja2: `import function_app` (a cold start) does not pay for it, only the
first request for the page does. Templates live in `templates/`; what they may rely on:

- Every `{{ value }}` is HTML-escaped (`autoescape`), None prints as nothing (as `html.escape` of "" did), and
  a name the template does not get is an error (`StrictUndefined`), not an empty string.
- Nothing is marked safe in a template or in the data handed to one: the only markup that is not escaped is
  the stylesheet and the script of `assets.py` (the globals `STYLE` and `SCRIPT`) and what macros return.
- A template's line breaks and the indentation after them are dropped when it is loaded, so the markup can be
  laid out for reading while the page stays as it was written by hand. A space that matters goes inside a line;
  keep each `{% ... %}` and `{{ ... }}` on one line.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jinja2

TEMPLATES = Path(__file__).parent / "templates"
_LINE_BREAK = re.compile(r"\n[ \t]*")


def _source(name: str) -> tuple[str, str, Callable[[], bool]] | None:
    path = TEMPLATES / name
    if not path.is_file():
        return None  # the loader raises TemplateNotFound
    return _LINE_BREAK.sub("", path.read_text(encoding="utf-8")), str(path), lambda: True


def _blank_none(value: Any) -> Any:
    return "" if value is None else value


@functools.cache
def environment() -> jinja2.Environment:
    """The one Environment of the process, created on first use."""
    import jinja2
    from markupsafe import Markup

    from .assets import SCRIPT, STYLE
    from .svg import STATUS_CLASS

    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_source),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        finalize=_blank_none,
        auto_reload=False,
    )
    env.globals.update(STYLE=Markup(STYLE), SCRIPT=Markup(SCRIPT), STATUS_CLASS=STATUS_CLASS)
    return env


def render(name: str, **context: Any) -> str:
    """The template `name` rendered with `context`, every value in it escaped."""
    return environment().get_template(name).render(**context)


def macro(name: str, macro_name: str, *args: Any) -> str:
    """One macro of the template `name` called with `args`, as a string (its values escaped, as in a page)."""
    return str(getattr(environment().get_template(name).module, macro_name)(*args))
