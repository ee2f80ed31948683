"""Input hygiene: what a platform hands us is made valid, neutral text before the command core sees it.

Platforms deliver whatever their users type, and their JSON may carry code points no database or
terminal accepts: a lone UTF-16 surrogate (``\\ud800``) cannot be encoded, so a ``/kill`` reason
holding one failed the confirmation insert; a NUL is refused by PostgreSQL text columns; escape
sequences and bidirectional overrides garble terminals, logs and tables. Rather than refusing the
message (a ``/kill`` must not fail on its reason), every such code point is replaced by U+FFFD, so
the text stays visibly altered where it was altered. Tabs and line breaks become spaces: commands
are split on whitespace anyway.

Nothing here decides anything; it only guarantees that what reaches the dispatcher is encodable
and free of control characters.
"""

from __future__ import annotations

import re

REPLACEMENT = "\ufffd"
MAX_INPUT_CHARS = 8192  # well above any platform's message limit that matters here; 100 KB stops here
# C0 and C1 controls, DEL, and the bidirectional embedding, override and isolate controls.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SPACE = re.compile("[\t\n\r]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: object) -> str:
    """``text`` as valid Unicode without control characters; anything not a string becomes ``""``.

    A well-formed surrogate pair (as some JSON decoders leave it) is joined into its character; a lone
    surrogate becomes U+FFFD. Input longer than :data:`MAX_INPUT_CHARS` is cut there."""
    if not isinstance(text, str):
        return ""
    text = text[:MAX_INPUT_CHARS]
    if _SURROGATE.search(text):
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    text = _SPACE.sub(" ", text)
    return _CONTROL.sub(REPLACEMENT, text)
