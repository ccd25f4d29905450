"""The dictionary that username features look words up in.

The words come from the ``english-words`` package (its ``gcide`` list: the GNU Collaborative
International Dictionary of English, about 114,000 words), lower-cased, letters only. Proper
names are not in it, so ``boris`` is not a word but ``bolo`` is.
"""

from __future__ import annotations

from functools import lru_cache

from english_words import get_english_words_set

WORD_LIST = "gcide"
MIN_WORD_LENGTH = 3


@lru_cache(maxsize=1)
def dictionary_words() -> frozenset[str]:
    """Every word of three or more letters (read once, about 0.3 s)."""
    words = get_english_words_set([WORD_LIST], lower=True, alpha=True)
    return frozenset(word for word in words if len(word) >= MIN_WORD_LENGTH)
