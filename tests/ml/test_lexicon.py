"""Word and host lists: well-formed, and the word classes read more than English."""

from __future__ import annotations

from mailsift.ml.lexicon import (
    BRANDS,
    CLASS_OF,
    CLASSES,
    CLOUD_STORAGE,
    FORM_HOSTS,
    FREE_HOSTS,
    FREE_TENANTS,
    SHORTENERS,
)


def test_words_are_lower_case_single_words() -> None:
    for name, words in CLASSES.items():
        for word in words:
            assert word == word.lower() and " " not in word, (name, word)
    assert all(b == b.lower() and " " not in b for b in BRANDS)


def test_class_index_matches_the_classes() -> None:
    for name, words in CLASSES.items():
        assert all(name in CLASS_OF[w] for w in words)
    assert set(CLASS_OF) == set().union(*CLASSES.values())


def test_lures_in_other_languages_reach_the_classes() -> None:
    # Portuguese, Spanish, German, French, Dutch, Italian words of the same lures
    for word, cls in (("senha", "credential"), ("contraseña", "credential"),
                      ("conta", "account"), ("cuenta", "account"), ("konto", "account"),
                      ("atualize", "verify"), ("bestätigen", "verify"),
                      ("bloqueada", "urgency"), ("gesperrt", "urgency"),
                      ("fatura", "money"), ("rechnung", "money"),
                      ("encomenda", "delivery"), ("paquete", "delivery"), ("colis", "delivery"),
                      ("pakket", "delivery"), ("pontos", "reward"), ("gutschein", "reward")):
        assert cls in CLASS_OF[word], word


def test_host_lists_are_domains() -> None:
    for host in (*SHORTENERS, *FREE_HOSTS, *CLOUD_STORAGE, *FORM_HOSTS, *FREE_TENANTS):
        assert host == host.lower() and "." in host and "/" not in host, host
