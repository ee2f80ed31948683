"""The one place ccxt itself is imported (it ships no type information, so its names are ``Any``).

Importing ccxt costs about 1.2 s and 100 MB (2.7 s with ccxt.pro), so nothing outside ``exchanges.ccxt`` imports this
package at module level: the composition root and the ``tradectl venues`` command import it only when
a ccxt venue is configured or listed.
"""

from __future__ import annotations

from typing import Any

import ccxt as _ccxt  # type: ignore[import-untyped]  # ccxt ships no type information
import ccxt.async_support as _async  # type: ignore[import-untyped]  # as above

ccxt: Any = _ccxt
async_support: Any = _async
VERSION: str = str(_ccxt.__version__)


def pro() -> Any | None:
    """``ccxt.pro`` (WebSocket classes, bundled with ccxt >= 4) or None when this ccxt lacks it."""
    try:
        import ccxt.pro as _pro  # type: ignore[import-untyped]  # as above
    except ImportError:  # pragma: no cover - ccxt >= 4 bundles it
        return None
    return _pro
