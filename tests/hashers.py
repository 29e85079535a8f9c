"""A password hasher for the tests alone (tests/conftest.py): PBKDF2-SHA256 at one iteration.

At Django's default (over a million iterations) each factory-made user costs a quarter of a second, and
the suite makes thousands. The hashes keep the `pbkdf2_sha256$<iterations>$…` form, so the servers the
end-to-end tests start, with the default hashers, still verify them (the count is read from the hash)."""

from django.contrib.auth.hashers import PBKDF2PasswordHasher


class OneIterationPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    iterations = 1
