"""How guessable a new master password is: zxcvbn when installed, else its length.

zxcvbn (PyPI ``zxcvbn``, the ``strength`` extra) estimates guesses from dictionaries,
keyboard patterns, dates and repeats. Without it, only a short password is flagged.
The password is never part of a message: only its estimate is.
"""

from __future__ import annotations

MIN_SCORE = 3  # zxcvbn 3: about 10^10 guesses, a real cost against Argon2id offline
MIN_LENGTH = 12  # the fallback without zxcvbn


def weakness(password: bytes) -> str | None:
    """A one-line warning for a weak password, or None."""
    text = password.decode("utf-8", errors="replace")
    try:
        from zxcvbn import zxcvbn
    except ImportError:
        if len(text) < MIN_LENGTH:
            return (
                f"the master password is shorter than {MIN_LENGTH} characters "
                "(install zxcvbn for a better estimate)"
            )
        return None
    result = zxcvbn(text[:100])  # zxcvbn is quadratic; 100 characters is plenty
    score = int(result["score"])
    if score >= MIN_SCORE:
        return None
    guesses = float(result["guesses"])
    advice = str(result["feedback"].get("warning") or "")
    return (
        f"the master password is weak: about 10^{len(str(int(guesses))) - 1} guesses "
        f"(zxcvbn score {score} of 4)" + (f"; {advice.rstrip('.').lower()}" if advice else "")
    )
