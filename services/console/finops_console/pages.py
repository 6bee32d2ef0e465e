"""Server-rendered pages: the sign-in form and the single sign-on landing page. The dashboard is static HTML and
JS modules (static/)."""

from __future__ import annotations

from html import escape


def signin(message: str | None = None, *, sso: bool = False) -> str:
    alert = f'<p class="error" role="alert">{escape(message)}</p>' if message else ""
    single = (
        '<p class="card"><a href="/signin/oidc">Sign in with your organisation (single sign-on)</a></p>'
        if sso
        else ""
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · FinOps console</title>
<link rel="stylesheet" href="/static/console.css">
</head>
<body class="signin">
<header class="top"><p class="brand">FinOps console</p></header>
<main id="main">
<h1>Sign in</h1>
<p>Use the API token you were given (a person or a service account). The console keeps a session for it;
the token itself is not stored in your browser.</p>
{alert}
{single}
<form method="post" action="/signin" class="card">
<label for="token">API token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
</main>
</body>
</html>
"""


def signed_in(name: str) -> str:
    """Shown after single sign-on. The browser arrives here from the identity provider, a cross-site navigation,
    so it would not send the SameSite=Strict session cookie on a redirect to the dashboard; the refresh below is
    a new navigation started from this site, which does."""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="0;url=/">
<title>Signed in · FinOps console</title>
<link rel="stylesheet" href="/static/console.css">
</head>
<body class="signin">
<main id="main"><h1>Signed in</h1><p>Welcome, {escape(name)}. <a href="/">Open the console</a>.</p></main>
</body>
</html>
"""
