import pytest

from pocketlib import numbers


def test_gcd():
    assert numbers.gcd(12, 18) == 6
    assert numbers.gcd(-12, 18) == 6
    assert numbers.gcd(7, 0) == 7
    assert numbers.gcd(0, 0) == 0
    assert numbers.gcd(17, 5) == 1


def test_lcm():
    assert numbers.lcm(4, 6) == 12
    assert numbers.lcm(-4, 6) == 12
    assert numbers.lcm(0, 5) == 0
    assert numbers.lcm(7, 3) == 21


def test_is_prime():
    assert [n for n in range(-3, 30) if numbers.is_prime(n)] == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]
    assert numbers.is_prime(7919)
    assert not numbers.is_prime(7917)
    assert not numbers.is_prime(49)


def test_primes_below():
    assert numbers.primes_below(30) == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]
    assert numbers.primes_below(2) == []
    assert numbers.primes_below(3) == [2]
    assert numbers.primes_below(26) == [2, 3, 5, 7, 11, 13, 17, 19, 23]
    assert len(numbers.primes_below(1000)) == 168


def test_factorize():
    assert numbers.factorize(360) == [2, 2, 2, 3, 3, 5]
    assert numbers.factorize(97) == [97]
    assert numbers.factorize(1) == []
    assert numbers.factorize(49) == [7, 7]
    with pytest.raises(ValueError):
        numbers.factorize(0)


def test_binomial():
    assert numbers.binomial(5, 2) == 10
    assert numbers.binomial(10, 0) == 1
    assert numbers.binomial(10, 10) == 1
    assert numbers.binomial(6, 7) == 0
    assert numbers.binomial(6, -1) == 0
    assert [numbers.binomial(6, k) for k in range(7)] == [1, 6, 15, 20, 15, 6, 1]


def test_fibonacci():
    assert [numbers.fibonacci(n) for n in range(10)] == [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]
    with pytest.raises(ValueError):
        numbers.fibonacci(-1)


def test_digit_sum():
    assert numbers.digit_sum(1234) == 10
    assert numbers.digit_sum(-99) == 18
    assert numbers.digit_sum(0) == 0
    assert numbers.digit_sum(255, base=16) == 30


def test_to_base():
    assert numbers.to_base(255, 16) == "ff"
    assert numbers.to_base(10, 2) == "1010"
    assert numbers.to_base(-35, 36) == "-z"
    assert numbers.to_base(0, 7) == "0"
    assert numbers.to_base(36, 36) == "10"
    with pytest.raises(ValueError):
        numbers.to_base(5, 1)
    with pytest.raises(ValueError):
        numbers.to_base(5, 37)


def test_clamp():
    assert numbers.clamp(5, 0, 10) == 5
    assert numbers.clamp(-5, 0, 10) == 0
    assert numbers.clamp(15, 0, 10) == 10
    assert numbers.clamp(10, 0, 10) == 10
    with pytest.raises(ValueError):
        numbers.clamp(1, 2, 1)
