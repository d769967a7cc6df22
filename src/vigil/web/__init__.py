"""The web console (`/console`): server-rendered pages (Jinja2, htmx) for the people who
review, decide and administer (docs/console.md).

Building blocks for a page router:

- `signed_in(*roles)` (`security`): the dependency that admits a signed-in user with one of
  `roles` and returns a `SignedIn`; it also checks CSRF tokens on POST/PUT/PATCH/DELETE.
  `CurrentUser` and `AdminUser` are ready-made `Annotated` aliases.
- `render(request, template, context)` (`templating`): an HTML page; templates extend
  `base.html` and see `user` and `csrf_token`.
- `ConsoleError(status, message)`: an HTML error page.
- sessions (`sessions`): `sign_in`, `resolve`, `sign_out`, `sign_out_user`, `purge_expired`.

`install_console(app)` adds the console to the FastAPI app (`vigil.api.app.create_app`).
"""

from vigil.web.app import install_console, router
from vigil.web.security import (
    AdminUser,
    ConsoleError,
    CurrentUser,
    LoginRequired,
    safe_next,
    signed_in,
)
from vigil.web.sessions import SignedIn, resolve, sign_in, sign_out, sign_out_user
from vigil.web.templating import render, templates

__all__ = [
    "AdminUser",
    "ConsoleError",
    "CurrentUser",
    "LoginRequired",
    "SignedIn",
    "install_console",
    "render",
    "resolve",
    "router",
    "safe_next",
    "sign_in",
    "sign_out",
    "sign_out_user",
    "signed_in",
    "templates",
]
