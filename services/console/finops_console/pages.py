"""Server-rendered pages: only the sign-in form. The dashboard is static HTML and JS modules (static/)."""

from __future__ import annotations

from html import escape


def signin(message: str | None = None) -> str:
    alert = f'<p class="error" role="alert">{escape(message)}</p>' if message else ""
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
<form method="post" action="/signin" class="card">
<label for="token">API token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
</main>
</body>
</html>
"""
