"""Subject and display-name header lines, encoded and folded within the mail RFCs' limits.

The limits this module obeys:

- RFC 5322 section 2.1.1: a line MUST be at most 998 characters and SHOULD be at most 78
  (not counting CRLF). Folding inserts CRLF before white space; a folded line never holds
  white space alone (section 3.2.2).
- RFC 2047 section 2: "An 'encoded-word' may not be more than 75 characters long, including
  'charset', 'encoding', 'encoded-text', and delimiters", and "each line of a header field
  that contains one or more 'encoded-word's is limited to 76 characters". Python's
  ``email.header.Header`` writes 76-character words (measured: every long non-ASCII subject or
  name, on lines of up to 82 characters after ``To: ``), so the words are cut here, by
  counting.
- RFC 2047 section 5: each encoded-word holds whole characters (it decodes on its own); in a
  phrase (a display name) Q-encoded text may hold only letters, digits and ``!*+-/`` literally.
- RFC 2047 section 6.2: white space between two encoded-words is not part of the text, so a
  value's own spaces travel inside the words (Q writes them as ``_``).

Plain ASCII stays readable on the wire; anything else (non-ASCII, control characters, text that
looks like an encoded-word, a word too long to fold, edge spaces a parser would strip) is sent
as encoded-words, whose decoding is exactly the value.
"""

from __future__ import annotations

import base64
import string
from email.utils import formataddr

CRLF = "\r\n"
LINE = 78  # RFC 5322's SHOULD
ENCODED_LINE = 76  # RFC 2047's limit for a line holding an encoded-word
WORD = 75  # RFC 2047's MUST
_FRAME = len("=?utf-8?q?") + len("?=")
_Q_LITERAL = frozenset(string.ascii_letters + string.digits + "!*+-/")
# The longest field name an address header gets ("From: "): a name is folded to fit after it.
_ADDRESS_FIELD = len("From: ")


def _q(character: str) -> str:
    if character in _Q_LITERAL:
        return character
    if character == " ":
        return "_"
    return "".join(f"={byte:02X}" for byte in character.encode("utf-8"))


def _cost(character: str, scheme: str) -> int:
    """What the character adds to a word's encoded text: Q characters, or B's octets."""
    return len(_q(character)) if scheme == "q" else len(character.encode("utf-8"))


def _length(size: int, scheme: str) -> int:
    """An encoded-word's whole length for ``size`` (see ``_cost``)."""
    return _FRAME + (size if scheme == "q" else 4 * -(-size // 3))


def _word(text: str, scheme: str) -> str:
    if scheme == "q":
        return f"=?utf-8?q?{''.join(_q(character) for character in text)}?="
    return f"=?utf-8?b?{base64.b64encode(text.encode('utf-8')).decode('ascii')}?="


def encoded_words(value: str, first: int) -> list[str]:
    """``value`` as encoded-words: the first at most ``first`` characters long (what is left
    of its line), the others at most 75. Q or B, whichever is shorter for the whole value."""
    q_size = sum(_cost(character, "q") for character in value)
    scheme = "q" if _length(q_size, "q") <= _length(len(value.encode("utf-8")), "b") else "b"
    words: list[str] = []
    start, size, room = 0, 0, min(first, WORD)
    for index, character in enumerate(value):
        cost = _cost(character, scheme)
        if index > start and _length(size + cost, scheme) > room:
            words.append(_word(value[start:index], scheme))
            start, size, room = index, 0, WORD
        size += cost
    words.append(_word(value[start:], scheme))
    return words


def _plain(value: str) -> bool:
    """Safe to send as it is: printable ASCII that no reader would decode or trim."""
    return (
        value.isascii()
        and value.isprintable()
        and "=?" not in value
        and value == value.strip()
        and "  " not in value
    )


def _folded(field: str, value: str) -> str | None:
    """``Field: value`` folded at spaces to lines of at most 78; None when a word is too long
    for any line."""
    lines, line = [], f"{field}:"
    for word in value.split(" "):
        if len(line) + 1 + len(word) > LINE and line != f"{field}:":
            lines.append(line)
            line = ""
        line = f"{line} {word}"
        if len(line) > LINE:
            return None
    return CRLF.join([*lines, line])


def unstructured(field: str, value: str) -> str:
    """The whole header (``Subject: …``), folded lines joined by CRLF."""
    if _plain(value) and (folded := _folded(field, value)) is not None:
        return folded
    words = encoded_words(value, ENCODED_LINE - len(field) - 2)
    return f"{field}: " + f"{CRLF} ".join(words)


def mailbox(name: str, address: str) -> str:
    """An address header's value, ``Name <address>``, to follow ``From: `` or ``To: ``: an
    ASCII name that fits stays readable (quoted where RFC 5322 needs it), any other name
    becomes encoded-words; the address goes on its own line when the last one is full."""
    if not name:
        return address
    if _plain(name):
        written = formataddr((name, address))
        if _ADDRESS_FIELD + len(written) <= LINE:
            return written
    words = encoded_words(name, ENCODED_LINE - _ADDRESS_FIELD)
    last = len(words[-1]) + (_ADDRESS_FIELD if len(words) == 1 else 1)
    gap = " " if last + 2 + len(address) + 1 <= ENCODED_LINE else f"{CRLF} "
    return f"{CRLF} ".join(words) + f"{gap}<{address}>"
