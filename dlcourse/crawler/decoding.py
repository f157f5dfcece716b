"""Bytes → text: the encoding of a Korean page.

Korean news sites still serve EUC-KR (really CP949) next to UTF-8, and many
declare it wrongly or not at all.  Reading a page with the wrong codec gives
mojibake that a model would happily learn, so the encoding is taken from the
HTTP header, then the page's ``<meta>``, then detection — each used only if
the bytes really decode with it.
"""
import codecs
import re

import charset_normalizer

# EUC-KR pages routinely contain syllables only CP949 has ('똠', '햏', '뷁'),
# so every name of the EUC-KR family is read as CP949, its superset.
KOREAN_LABELS = {"euc-kr", "euc_kr", "euckr", "ks_c_5601-1987", "ks_c_5601", "ksc5601", "korean",
                 "x-windows-949", "windows-949", "ms949", "uhc", "cp949", "x-euc-kr"}
# Latin-1 / ASCII is what many misconfigured servers claim by default, so it is only a hint.
WESTERN_CODECS = {"ascii", "latin-1", "iso8859-1", "cp1252"}
META_CHARSET = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([a-z0-9_.:-]+)""", re.IGNORECASE)
HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([a-z0-9_.:-]+)""", re.IGNORECASE)
META_SEARCH_BYTES = 4096


def _codec_name(label):
    """Python's name for an encoding label (``"EUC-KR"`` → ``"cp949"``), or None if unknown."""
    label = label.strip().strip("\"'").lower()
    if label in KOREAN_LABELS:
        return "cp949"
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    if name == "euc_kr":
        return "cp949"
    return "cp1252" if name in WESTERN_CODECS else name


def _decodes(content, encoding):
    try:
        return content.decode(encoding)
    except UnicodeDecodeError:
        return None


def decode_html(content, header_encoding):
    """``(text, encoding)`` of an HTML page: the header's charset, else ``<meta>``, else detection.

    A declaration is used only if the bytes really decode with it.  Without
    one, valid UTF-8 is UTF-8; otherwise charset_normalizer chooses between
    UTF-8 and CP949; as a last resort UTF-8 with replacement characters.
    """
    if content.startswith(codecs.BOM_UTF8):
        return content[len(codecs.BOM_UTF8):].decode("utf-8", errors="replace"), "utf-8"
    meta = META_CHARSET.search(content[:META_SEARCH_BYTES])
    declared = [header_encoding, meta.group(1).decode("ascii", errors="replace") if meta else None]
    western_hint = False
    for label in declared:
        encoding = _codec_name(label) if label else None
        if encoding == "cp1252":
            western_hint = True
        elif encoding and (text := _decodes(content, encoding)) is not None:
            return text, encoding
    if (text := _decodes(content, "utf-8")) is not None:
        return text, "utf-8"
    candidates = ["utf_8", "cp949"] + (["cp1252"] if western_hint else [])
    best = charset_normalizer.from_bytes(content, cp_isolation=candidates).best()
    encoding = _codec_name(best.encoding) if best is not None else None
    if encoding:
        return content.decode(encoding, errors="replace"), encoding
    return content.decode("utf-8", errors="replace"), "utf-8"


def _header_charset(content_type):
    """The charset a ``Content-Type`` header declares, or None (never requests' ISO-8859-1 guess for text/html)."""
    match = HEADER_CHARSET.search(content_type or "")
    return match.group(1) if match else None
