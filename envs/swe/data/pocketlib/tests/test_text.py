import pytest

from pocketlib import text


def test_words():
    assert text.words("Hello, big-world 42!") == ["Hello", "big", "world", "42"]


def test_slugify_basic():
    assert text.slugify("Hello, World!") == "hello-world"


def test_slugify_separator():
    assert text.slugify("A  B c", sep="_") == "a_b_c"


def test_slugify_max_length_strips_trailing_separator():
    assert text.slugify("alpha beta gamma", max_length=6) == "alpha"
    assert text.slugify("alpha beta gamma", max_length=10) == "alpha-beta"


def test_slugify_short_enough_is_untouched():
    assert text.slugify("ab cd", max_length=5) == "ab-cd"


@pytest.mark.parametrize(
    "s, expected",
    [("parseHTTPResponse", "parse_http_response"), ("Hello World", "hello_world"), ("already_snake", "already_snake"),
     ("version2Update", "version2_update")],
)
def test_snake_case(s, expected):
    assert text.snake_case(s) == expected


def test_camel_case():
    assert text.camel_case("hello_big_world") == "helloBigWorld"
    assert text.camel_case("hello big world", upper_first=True) == "HelloBigWorld"
    assert text.camel_case("") == ""


def test_truncate():
    assert text.truncate("hello world", 20) == "hello world"
    assert text.truncate("hello world", 8) == "hello..."
    assert text.truncate("hello world", 11) == "hello world"
    assert text.truncate("hello world", 2) == ".."


def test_wrap():
    assert text.wrap("the quick brown fox jumps", 10) == ["the quick", "brown fox", "jumps"]
    assert text.wrap("a bb ccc", 4) == ["a bb", "ccc"]
    assert text.wrap("extraordinary word", 5) == ["extraordinary", "word"]
    assert text.wrap("", 5) == []


def test_is_palindrome():
    assert text.is_palindrome("A man, a plan, a canal: Panama")
    assert text.is_palindrome("")
    assert text.is_palindrome("abba")
    assert not text.is_palindrome("abca")
    assert not text.is_palindrome("ab")


def test_common_prefix():
    assert text.common_prefix(["interview", "internet", "interval"]) == "inter"
    assert text.common_prefix(["abc"]) == "abc"
    assert text.common_prefix(["abc", "xyz"]) == ""
    assert text.common_prefix([]) == ""
    assert text.common_prefix(["abcd", "ab"]) == "ab"


@pytest.mark.parametrize(
    "a, b, d", [("kitten", "sitting", 3), ("", "abc", 3), ("abc", "abc", 0), ("flaw", "lawn", 2), ("a", "b", 1)]
)
def test_levenshtein(a, b, d):
    assert text.levenshtein(a, b) == d
    assert text.levenshtein(b, a) == d


def test_count_words():
    assert text.count_words("The cat and the hat") == {"the": 2, "cat": 1, "and": 1, "hat": 1}
