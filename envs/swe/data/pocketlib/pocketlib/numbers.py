"""Integer helpers: divisibility, primes, combinatorics and bases."""

DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def gcd(a, b):
    """Greatest common divisor (non-negative); gcd(0, 0) == 0."""
    a, b = abs(a), abs(b)
    while b:
        a, b = b, a % b
    return a


def lcm(a, b):
    """Least common multiple (non-negative); 0 if either is 0."""
    if a == 0 or b == 0:
        return 0
    return abs(a * b) // gcd(a, b)


def is_prime(n):
    """Whether `n` is a prime number."""
    if n < 2:
        return False
    if n < 4:
        return True
    if n % 2 == 0:
        return False
    d = 3
    while d * d <= n:
        if n % d == 0:
            return False
        d += 2
    return True


def primes_below(n):
    """All primes p < n, in increasing order (sieve of Eratosthenes)."""
    if n < 3:
        return []
    sieve = [True] * n
    sieve[0] = sieve[1] = False
    for p in range(2, int(n**0.5) + 1):
        if sieve[p]:
            for multiple in range(p * p, n, p):
                sieve[multiple] = False
    return [i for i, prime in enumerate(sieve) if prime]


def factorize(n):
    """Prime factors of n >= 1 with multiplicity, in increasing order."""
    if n < 1:
        raise ValueError("factorize needs a positive integer")
    factors = []
    d = 2
    while d * d <= n:
        while n % d == 0:
            factors.append(d)
            n //= d
        d += 1
    if n > 1:
        factors.append(n)
    return factors


def binomial(n, k):
    """n choose k (0 when k < 0 or k > n)."""
    if k < 0 or k > n:
        return 0
    k = min(k, n - k)
    result = 1
    for i in range(1, k + 1):
        result = result * (n - k + i) // i
    return result


def fibonacci(n):
    """The n-th Fibonacci number, fibonacci(0) == 0, fibonacci(1) == 1."""
    if n < 0:
        raise ValueError("fibonacci needs n >= 0")
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def digit_sum(n, base=10):
    """Sum of the digits of |n| written in `base`."""
    n = abs(n)
    total = 0
    while n > 0:
        total += n % base
        n //= base
    return total


def to_base(n, base):
    """`n` written in `base` (2 to 36), with a leading '-' when negative."""
    if not 2 <= base <= 36:
        raise ValueError("base must be between 2 and 36")
    if n == 0:
        return "0"
    sign = "-" if n < 0 else ""
    n = abs(n)
    out = []
    while n:
        n, r = divmod(n, base)
        out.append(DIGITS[r])
    return sign + "".join(reversed(out))


def clamp(x, low, high):
    """`x` limited to the closed range [low, high]."""
    if low > high:
        raise ValueError("low must not exceed high")
    return max(low, min(x, high))
