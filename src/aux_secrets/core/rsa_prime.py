"""gokey's deterministic RSA keys (an old Go ``rand.Prime`` and ``GenerateMultiPrimeKey``).

Prime search, per candidate: read ``ceil(bits / 8)`` bytes; keep the low ``bits % 8`` bits of
the first byte (8 when that is 0), set the top two bits and the lowest bit; then walk
``delta = 0, 2, 4, ...`` (below 2**20) to the first ``p + delta`` that no prime from 3 to 53
divides; accept it when it is prime and still ``bits`` long, else read the next candidate.

Which prime is found depends only on the candidate sequence, not on how primality is
tested, so any correct test gives the same key; gmpy2 makes it fast.

Key: ``p`` first, then ``q`` (both ``bits / 2``); start over when ``p == q``, the modulus is
not ``bits`` long, or ``e = 65537`` has no inverse modulo ``(p - 1)(q - 1)``;
``d = e^-1 mod (p - 1)(q - 1)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from aux_secrets.core.keystream import KeyStream

_SMALL_PRIMES = (3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53)
_SMALL_PRIMES_PRODUCT = 16294579238595022365
E = 65537


def _delta(mod: int) -> int:
    for delta in range(0, 1 << 20, 2):
        m = mod + delta
        if all(m % sp for sp in _SMALL_PRIMES):
            return delta
    return 0  # pragma: no cover - gokey keeps the candidate unchanged in this case


def gokey_prime(stream: KeyStream, bits: int) -> int:
    """The prime gokey's search finds in ``stream`` (consumes the same bytes gokey does)."""
    import gmpy2

    if bits < 7:
        raise ValueError("prime size must be at least 7 bits")
    top = bits % 8 or 8
    size = (bits + 7) // 8
    mask = (1 << top) - 1
    high = 3 << (top - 2)
    while True:
        raw = bytearray(stream.read(size))
        raw[0] = (raw[0] & mask) | high
        raw[-1] |= 1
        p = int.from_bytes(raw, "big")
        p += _delta(p % _SMALL_PRIMES_PRODUCT)
        if p.bit_length() == bits and gmpy2.is_prime(p, 20):
            return p


@dataclass(frozen=True)
class RsaKey:
    """An RSA private key with the CRT values PKCS#1 stores (qinv = q^-1 mod p)."""

    n: int
    e: int
    d: int
    p: int
    q: int
    dp: int
    dq: int
    qinv: int


def gokey_rsa(stream: KeyStream, bits: int) -> RsaKey:
    """gokey's two-prime RSA key of ``bits`` bits from ``stream``."""
    import gmpy2

    while True:
        p = gokey_prime(stream, bits // 2)
        q = gokey_prime(stream, bits - p.bit_length())
        if p == q:
            continue
        n = p * q
        if n.bit_length() != bits:
            continue
        phi = (p - 1) * (q - 1)
        if gmpy2.gcd(E, phi) != 1:
            continue
        d = int(gmpy2.invert(E, phi))
        return RsaKey(
            n=n,
            e=E,
            d=d,
            p=p,
            q=q,
            dp=d % (p - 1),
            dq=d % (q - 1),
            qinv=int(gmpy2.invert(q, p)),
        )
