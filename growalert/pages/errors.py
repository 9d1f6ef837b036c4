"""Errors as the pages show them: a sentence next to its field, and where a rule of the
deployment bites (private addresses), the rule and the setting that changes it."""

from __future__ import annotations

PRIVATE_HINT = (
    " growalert only connects to public addresses, so that nobody can use it to reach machines "
    "on its own network. On a self-hosted deployment the operator can allow private addresses "
    "with {setting}=true."
)


def sentence(text: str) -> str:
    """ "must be an http(s) URL" → "Must be an http(s) URL."."""
    text = text.strip()
    if not text:
        return text
    if not text.startswith("growalert"):  # the name is written in lower case
        text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def explained(text: str, *, setting: str) -> str:
    """``text`` as a sentence; a refused private address also says why and what allows it."""
    shown = sentence(text)
    if any(words in text for words in ("private address", "own InfluxDB", "cannot connect to")):
        return shown + PRIVATE_HINT.format(setting=setting)
    return shown
