"""Secrets that live inside URLs: a database password, an incoming-webhook URL, a token in a query.

They are plain strings in the settings (a URL is one value), so ``SecretStr`` cannot hide them. This
module finds them in the effective settings, gives the form safe to print (``postgresql://u:***@h/db``,
``https://discord.com/***``) and the parts to register with the log redactor:

- the password of any URL with credentials (``user:password@``), as written and decoded;
- query parameters that carry credentials (``?password=``, ``?token=``, ``?key=``, ...);
- an alert destination's webhook URL as a whole: whoever has it can post to the channel, so
  everything after the host is secret (registered whole and as its path, which is what most
  logged forms of the request contain).
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from core.settings.settings_models import NotifySettings

MASK = "***"
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_SECRET_PARAMS = frozenset({
    "password", "passwd", "pass", "pwd", "secret", "token", "key", "apikey", "api_key", "access_token",
    "auth", "sig", "signature", "client_secret", "sslpassword",
})


@dataclass(frozen=True)
class UrlSecret:
    """A setting whose URL holds a secret: ``path`` (``database.url``), the value ``shown`` in place
    of it, and the ``parts`` the log redactor must hide."""

    path: tuple[str, ...]
    shown: str
    parts: tuple[str, ...]
    name: str  # as the operator knows it: database.url, notify.destinations[ops].target


def redact_url(url: str, *, whole: bool = False) -> tuple[str, tuple[str, ...]]:
    """``(shown, secret parts)``; ``whole`` treats everything after the host as secret (webhooks).
    A URL without a secret comes back unchanged with no parts."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:  # not even a URL; a webhook target is hidden all the same
        return (f"{url.split('://', 1)[0]}://{MASK}", (url,)) if whole else (url, ())
    secrets: list[str] = []
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, sep, password = userinfo.partition(":")
        if sep and password:
            secrets += [password, urllib.parse.unquote(password)]
            netloc = f"{user}:{MASK}@{host}"
        elif whole and user:
            secrets.append(user)
            netloc = f"{MASK}@{host}"
    if whole:
        rest = url.split(parts.netloc, 1)[1] if parts.netloc else url.split("://", 1)[-1]
        if rest.strip("/"):
            secrets += [url, rest.split("?", 1)[0].split("#", 1)[0], rest]
            return f"{parts.scheme}://{netloc}/{MASK}", _dedupe(secrets)
        return f"{parts.scheme}://{netloc}{rest}", _dedupe(secrets)
    query = []
    for name, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
        if name.lower() in _SECRET_PARAMS and value:
            secrets += [value, urllib.parse.quote_plus(value), urllib.parse.quote(value, safe="")]
            value = MASK
        query.append((name, value))
    if not secrets:
        return url, ()
    shown_query = urllib.parse.urlencode(query, safe="*") if parts.query else ""
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, shown_query, parts.fragment)), _dedupe(secrets)


def _dedupe(values: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


def _is_webhook(path: tuple[str, ...]) -> bool:
    # notify.destinations.<index>.target: a URL there is an incoming webhook (bot/notify senders)
    return len(path) == 4 and path[:2] == ("notify", "destinations") and path[3] == "target"


def _walk(value: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], str]]:
    if isinstance(value, str):
        if _URL_RE.match(value):
            yield path, value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _walk(getattr(value, name), (*path, name))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, (*path, str(key)))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _walk(item, (*path, str(index)))


def find_url_secrets(settings: BaseModel) -> list[UrlSecret]:
    """Every URL-valued setting that holds a secret, in settings order."""
    found = []
    notify = getattr(settings, "notify", None)  # the service's Settings; a bare model has no destinations
    for path, url in _walk(settings, ()):
        webhook = _is_webhook(path)
        shown, parts = redact_url(url, whole=webhook)
        if parts:
            name = ".".join(path)
            if webhook and isinstance(notify, NotifySettings):
                dest = notify.destinations[int(path[2])]
                name = f"notify.destinations[{dest.name}].target"
            found.append(UrlSecret(path, shown, parts, name))
    return found


def redact_dump(data: Any, secrets: list[UrlSecret]) -> Any:
    """``model_dump(mode="json")`` output with each secret URL replaced by its shown form."""
    by_path = {s.path: s.shown for s in secrets}

    def walk(value: Any, path: tuple[str, ...]) -> Any:
        if path in by_path:
            return by_path[path]
        if isinstance(value, dict):
            return {k: walk(v, (*path, str(k))) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, (*path, str(i))) for i, v in enumerate(value)]
        return value

    return walk(data, ())
